"""MnistExampleGen's parameter keys, output key and artifact properties (no TFX or TensorFlow).

Imported by its component, executor and driver, and by every reader of its Examples.
"""

from core import contract

# Execution parameters.
INPUT_DIR_KEY = "input_dir"
NUM_TRAIN_SHARDS_KEY = "num_train_shards"
NUM_EVAL_SHARDS_KEY = "num_eval_shards"
# The input files' content (idx.input_fingerprint), so that the cache key changes with the data:
# set by the driver under LocalDagRunner, given when compiling for Kubeflow Pipelines.
INPUT_FINGERPRINT_KEY = "input_fingerprint"

# Output.
EXAMPLES_KEY = "examples"

# Enough shards for two or more workers to share a split and for the trainer to interleave reads.
DEFAULT_NUM_SHARDS = {contract.TRAIN_SPLIT: 10, contract.EVAL_SPLIT: 2}
NUM_SHARDS_KEYS = {contract.TRAIN_SPLIT: NUM_TRAIN_SHARDS_KEY,
                   contract.EVAL_SPLIT: NUM_EVAL_SHARDS_KEY}


def num_examples_property(split: str) -> str:
  """Name of the Examples artifact's int custom property holding the split's record count."""
  return f"{split}_num_examples"
