"""Serves pushed versions of the int8 MNIST model with LiteRT: REST API, page, CLI (no TF)."""
