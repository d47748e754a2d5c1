"""TFX Trainer module: the hand-built quantization-aware CNN and its training loop."""
