"""Reads the Trainer's curves (loss, accuracy, learning rate) from its TensorBoard event files.

The ModelRun artifact holds `train/` (per-step scalars every `summary_every_steps`) and `eval/`
(loss and accuracy on the eval split after each epoch), as trainer_module/train.py writes them.
Read with TensorBoard's own EventAccumulator: TF2's tf.summary.scalar stores scalars as tensors.
"""

import os
from typing import Dict, List, Tuple

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util
from tfx.dsl.io import fileio

from core import contract

# A curve: (steps, values), in step order.
Curve = Tuple[List[int], List[float]]
CURVE_TAGS = ("loss", "accuracy", "learning_rate")


def read_scalars(log_dir: str, tags=CURVE_TAGS) -> Dict[str, Curve]:
  """The scalar curves among `tags` in one event directory; {} when it does not exist."""
  if not fileio.exists(log_dir):
    return {}
  accumulator = event_accumulator.EventAccumulator(
      log_dir, size_guidance={event_accumulator.TENSORS: 0, event_accumulator.SCALARS: 0,
                              event_accumulator.IMAGES: 1, event_accumulator.HISTOGRAMS: 1})
  accumulator.Reload()
  available = accumulator.Tags()
  curves = {}
  for tag in tags:
    if tag in available[event_accumulator.TENSORS]:
      points = [(event.step, float(tensor_util.make_ndarray(event.tensor_proto)))
                for event in accumulator.Tensors(tag)]
    elif tag in available[event_accumulator.SCALARS]:
      points = [(event.step, float(event.value)) for event in accumulator.Scalars(tag)]
    else:
      continue
    points.sort()
    curves[tag] = ([step for step, _ in points], [value for _, value in points])
  return curves


def train_dir(model_run_uri: str) -> str:
  return os.path.join(model_run_uri, contract.MODEL_RUN_TRAIN_DIR)


def eval_dir(model_run_uri: str) -> str:
  return os.path.join(model_run_uri, contract.MODEL_RUN_EVAL_DIR)


def read_run(model_run_uri: str) -> Dict[str, Dict[str, Curve]]:
  """{"train": curves, "eval": curves} of the ModelRun artifact at `model_run_uri`."""
  return {"train": read_scalars(train_dir(model_run_uri)),
          "eval": read_scalars(eval_dir(model_run_uri))}
