"""The pipeline definition (pipeline.py) and its thin runners and command line."""

# The pipeline's name in ML Metadata: runs of one name share the cache and the history of
# blessed models.
PIPELINE_NAME = "mnist-edgetpu"

# The trainers a pipeline can use, by the name users pick them with (imported by the Trainer).
TRAINER_RUN_FNS = {
    "hand-built": "trainer_module.run.run_fn",  # The hand-built QAT network that ships.
    "keras-baseline": "trainer_module.keras_baseline.run_fn",  # The seed's Keras example.
}
