"""Compiles the pipeline for Kubeflow Pipelines v2 (the same wiring as the local run)."""
