"""Training one route: the Examples every route reads, and one seed of one route trained.

The Examples are written once by MnistExampleGen's executor (the pipeline's own component), and
the routes read its splits where TFX says they are (`artifact_utils.get_split_uri`). Each route
trains with its trainer's own `train_and_export`, exactly as the Trainer component would run it.
"""

import dataclasses
import math
import os
import shutil
import time
from typing import Any, Dict, List, Tuple

import tf_keras
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.mnist_example_gen import constants as example_gen_constants
from components.mnist_example_gen import executor as example_gen_executor
from components.mnist_example_gen import idx
from core import contract
from mnist_tfx.compare import routes as routes_lib
from trainer_module import keras_baseline
from trainer_module import train

# --quick: train on the first QUICK_TRAIN training images and test on the first QUICK_EVAL test
# images (at most).
QUICK_TRAIN = 6000
QUICK_EVAL = 1000
SERVING_MODEL_DIR = "serving_model"
MODEL_RUN_DIR = "model_run"


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """One seed of one route, trained and exported."""
  serving_model_dir: str
  wall_seconds: float  # The whole train_and_export call: data loading, epochs, export.
  result: train.TrainingResult  # Per-epoch (seconds, eval accuracy) in eval_history.


def write_examples(data_dir: str, examples_uri: str,
                   quick: bool) -> Tuple[List[str], List[str]]:
  """Validates the IDX files, writes them as Examples with MnistExampleGen's executor.

  Returns the (train, eval) file patterns the routes read: every shard, or for `quick` the first
  shard of each split, cut so that it holds the first QUICK_TRAIN / QUICK_EVAL images at most (the
  executor's shard i holds examples [i*n/k, (i+1)*n/k) in file order).

  Raises:
    idx.IdxFormatError: a file is missing or invalid (before anything is written).
  """
  sources = idx.validate_input_dir(data_dir)
  limits = {contract.TRAIN_SPLIT: QUICK_TRAIN, contract.EVAL_SPLIT: QUICK_EVAL}
  shards = {split: (math.ceil(sources[split].num_examples / limits[split]) if quick else
                    example_gen_constants.DEFAULT_NUM_SHARDS[split]) for split in sources}
  examples = standard_artifacts.Examples()
  examples.uri = examples_uri
  example_gen_executor.Executor().Do({}, {example_gen_constants.EXAMPLES_KEY: [examples]}, {
      example_gen_constants.INPUT_DIR_KEY: data_dir,
      **{example_gen_constants.NUM_SHARDS_KEYS[split]: count for split, count in shards.items()}})

  def pattern(split: str) -> List[str]:
    name = (example_gen_executor.SHARD_NAME_TEMPLATE.format(index=0, count=shards[split])
            if quick else "*")
    return [os.path.join(artifact_utils.get_split_uri([examples], split), name)]

  return pattern(contract.TRAIN_SPLIT), pattern(contract.EVAL_SPLIT)


def warm_up_keras(eval_files: List[str], scratch_dir: str) -> None:
  """One throw-away Keras epoch (the seed's MLP on the test split), so that no route's time
  includes Keras' process start-up.

  The first Keras training in a process pays one-time costs (tens of seconds on 2 cores) that a
  second, identical one does not; the hand-built routes need no warm-up.
  """
  keras_baseline.train_and_export(eval_files, eval_files, os.path.join(scratch_dir, "model"),
                                  os.path.join(scratch_dir, "logs"), {"epochs": 1})
  tf_keras.backend.clear_session()
  shutil.rmtree(scratch_dir)


def train_route(route: routes_lib.Route, config: Dict[str, Any], train_files: List[str],
                eval_files: List[str], run_dir: str) -> TrainedRun:
  """Trains and exports one run of `route` with `config` in `run_dir` (emptied first: the
  hand-built trainer would otherwise resume from the checkpoints of an earlier run)."""
  if os.path.exists(run_dir):
    shutil.rmtree(run_dir)
  serving_model_dir = os.path.join(run_dir, SERVING_MODEL_DIR)
  model_run_dir = os.path.join(run_dir, MODEL_RUN_DIR)
  start = time.perf_counter()
  if route.trainer == routes_lib.HAND_BUILT:
    result = train.train_and_export(train_files, eval_files, serving_model_dir, model_run_dir,
                                    hparams=config)
  else:
    result = keras_baseline.train_and_export(train_files, eval_files, serving_model_dir,
                                             model_run_dir, config)
    tf_keras.backend.clear_session()  # Each Keras model starts from a fresh graph state.
  return TrainedRun(serving_model_dir, time.perf_counter() - start, result)
