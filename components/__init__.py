"""Custom TFX components of the MNIST → Edge TPU pipeline."""
