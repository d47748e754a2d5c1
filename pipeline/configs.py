"""The pipeline's names and choices, stated once for the wiring, the runners and the command line.

No TFX or TensorFlow import, so `mnist-tfx --help` can read them at once.
"""

import re

# The pipeline's name in ML Metadata: runs of one name share the cache.
PIPELINE_NAME = "mnist-edgetpu"
# The names Kubeflow Pipelines v2 accepts (TFX's kubeflow/v2/pipeline_builder.py checks this at
# compile time). Every pipeline name must follow it, so a pipeline run locally can move to Kubeflow.
PIPELINE_NAME_RULE = "[a-z0-9][a-z0-9-]{0,127}"


def check_pipeline_name(name: str) -> str:
  """Returns `name` if it follows PIPELINE_NAME_RULE.

  Raises:
    ValueError: showing the name and the rule.
  """
  if not re.fullmatch(PIPELINE_NAME_RULE, name):
    raise ValueError(f"pipeline name {name!r} is not allowed: Kubeflow Pipelines needs "
                     f"{PIPELINE_NAME_RULE} (lowercase letters, digits and '-', starting with a "
                     "letter or digit, at most 128 characters), e.g. 'mnist-edgetpu-v2'")
  return name

# The trainers a pipeline can use, by the name users pick them with (imported by the Trainer).
HAND_BUILT_TRAINER = "hand-built"
KERAS_BASELINE_TRAINER = "keras-baseline"
TRAINER_RUN_FNS = {
    HAND_BUILT_TRAINER: "trainer_module.run.run_fn",  # The hand-built QAT network that ships.
    KERAS_BASELINE_TRAINER: "trainer_module.keras_baseline.run_fn",  # The seed's Keras example.
}
DEFAULT_TRAINER = HAND_BUILT_TRAINER

