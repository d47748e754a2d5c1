"""The pipeline: its one wiring (pipeline.py), its names and choices (configs.py), the schema."""
