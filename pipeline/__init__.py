"""The pipeline definition and its runners."""
