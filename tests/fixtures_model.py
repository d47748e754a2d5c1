"""Model fixtures: a hand-built QAT model trained on the slice and exported (owned by the trainer)."""
