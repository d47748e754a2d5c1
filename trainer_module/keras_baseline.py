"""Keras baseline: the seed's Keras model, optionally quantization-aware through tfmot.

Trainer(run_fn='trainer_module.keras_baseline.run_fn', custom_config={...}) trains, by default,
the seed's example: Flatten - Dense 128 ReLU - Dropout 0.2 - Dense 10 softmax with Adam at a
constant 1e-3 for 5 epochs, no augmentation, Keras' default Glorot-uniform initialization
(tf_keras, the Keras 2 that tensorflow-model-optimization needs). It exports the same signature
contract as the hand-built trainer, so it goes through the same evaluator. With "quantize": true
the model is wrapped by tfmot's quantize_model; without it the float model does not convert to full
int8 (no representative dataset), which the evaluator reports as a conversion failure.

The hand-built trainer's recipe is available here too, from the same code, so `mnist-tfx compare`
can train the same network both ways under one recipe: the batches come from the same in-memory
split in the same order (`data.epoch_order`), augmented by the same function with the same
per-step seeds (`train.augmented_images`, `train.step_seed`); the learning rate follows the same
schedule (`optimizer.learning_rate`, wrapped as a Keras `LearningRateSchedule`); Keras' Adam is
the update of `optimizer.Adam`; "initializer": "fan_in_truncated_normal" draws the kernels as the
hand-built layers do. What stays Keras' own: dropout masks (Keras' RNG) and the loss on softmax
probabilities rather than logits (the same function).
"""

import math
import time
from typing import Any, Mapping, NamedTuple, Optional, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from tfx.components.trainer import fn_args_utils

from core import config_values
from core import contract
from core import features
from trainer_module import data
from trainer_module import export
from trainer_module import hparams as hparams_lib
from trainer_module import optimizer as optimizer_lib
from trainer_module import train

QUANTIZE_KEY = "quantize"
INITIALIZER_KEY = "initializer"
# Keras' default kernel initializer, and the hand-built layers' (trainer_module/layers.py).
GLOROT_UNIFORM = "glorot_uniform"
FAN_IN_TRUNCATED_NORMAL = "fan_in_truncated_normal"
INITIALIZERS = (GLOROT_UNIFORM, FAN_IN_TRUNCATED_NORMAL)
# The seed's Keras example (network and recipe); the hand-built trainer's defaults differ.
KERAS_DEFAULTS = {"model": "mlp", "mlp_units": 128, "dropout": 0.2, "epochs": 5,
                  "learning_rate": 1e-3, "lr_schedule": "constant", "max_shift": 0,
                  INITIALIZER_KEY: GLOROT_UNIFORM}
# HParams fields this baseline honours (plus "quantize" and "initializer"); others are rejected,
# not ignored.
KERAS_KEYS = frozenset({"model", "epochs", "batch_size", "learning_rate", "lr_schedule",
                        "warmup_fraction", "lr_decay_rate", "max_shift", "max_rotation",
                        "max_scale", "dropout", "conv_filters", "conv_kernel_size", "dense_units",
                        "mlp_units", "seed"})
_EVAL_BATCH = 1000


class KerasConfig(NamedTuple):
  hp: hparams_lib.HParams
  quantize: bool
  initializer: str


def parse_config(config: Optional[Mapping[str, Any]]) -> KerasConfig:
  """(hparams, quantize, initializer) from a custom_config, over the seed's Keras defaults.

  Raises:
    ValueError: a key this baseline does not honour, or a bad value.
  """
  config = {**KERAS_DEFAULTS, **(config or {})}
  quantize = config_values.parse_bool(QUANTIZE_KEY, config.pop(QUANTIZE_KEY, False))
  initializer = config.pop(INITIALIZER_KEY)
  if initializer not in INITIALIZERS:
    raise ValueError(f"Unknown {INITIALIZER_KEY} {initializer!r}; expected one of {INITIALIZERS}.")
  config.pop(hparams_lib.CODE_FINGERPRINT_KEY, None)  # Follows the code for the cache only.
  unsupported = sorted(set(config) - KERAS_KEYS)
  if unsupported:
    raise ValueError(f"The Keras baseline does not support {unsupported}; it takes "
                     f"{sorted(KERAS_KEYS | {QUANTIZE_KEY, INITIALIZER_KEY})}.")
  return KerasConfig(hparams_lib.HParams.from_config(config), quantize, initializer)


def _kernel_initializer(initializer: str, fan_in: int):
  """Keras' own (by name), or the hand-built layers' truncated normal of stddev 1/sqrt(fan_in)
  (Sonnet's default; fan_in = the product of every kernel dimension but the last)."""
  if initializer == FAN_IN_TRUNCATED_NORMAL:
    return tf_keras.initializers.TruncatedNormal(stddev=1.0 / math.sqrt(fan_in))
  return initializer


def build_model(hp: hparams_lib.HParams, quantize: bool,
                initializer: str = GLOROT_UNIFORM) -> tf_keras.Model:
  """The seed's MLP (model "mlp") or the hand-built CNN's architecture (model "cnn") in Keras."""
  layers = tf_keras.layers
  body = [layers.InputLayer(input_shape=(contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1))]
  features_size, hidden = contract.NUM_PIXELS, hp.mlp_units
  if hp.model == "cnn":
    channels, size = 1, contract.IMAGE_HEIGHT
    for filters in hp.conv_filters:
      fan_in = hp.conv_kernel_size ** 2 * channels
      body += [layers.Conv2D(filters, hp.conv_kernel_size, padding="same", activation="relu",
                             kernel_initializer=_kernel_initializer(initializer, fan_in)),
               layers.MaxPooling2D(2, padding="same")]
      channels, size = filters, (size + 1) // 2
    features_size, hidden = size * size * channels, hp.dense_units
  body += [layers.Flatten(),
           layers.Dense(hidden, activation="relu",
                        kernel_initializer=_kernel_initializer(initializer, features_size)),
           layers.Dropout(hp.dropout),
           layers.Dense(contract.NUM_CLASSES, activation="softmax",
                        kernel_initializer=_kernel_initializer(initializer, hidden))]
  model = tf_keras.Sequential(body)
  return tfmot.quantization.keras.quantize_model(model) if quantize else model


class TrainerSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
  """The hand-built trainer's learning-rate schedule (`optimizer.learning_rate`) for Keras.

  Keras' optimizer calls it with its `iterations` before the update, the same 0-based step the
  hand-built trainer passes.
  """

  def __init__(self, hp: hparams_lib.HParams, steps_per_epoch: int, total_steps: int):
    self.hp, self.steps_per_epoch, self.total_steps = hp, steps_per_epoch, total_steps

  def __call__(self, step):
    return optimizer_lib.learning_rate(self.hp, step, self.steps_per_epoch, self.total_steps)

  def get_config(self):
    return {"lr_schedule": self.hp.lr_schedule, "learning_rate": self.hp.learning_rate,
            "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps}


def training_batches(pixels: np.ndarray, labels: np.ndarray, hp: hparams_lib.HParams,
                     steps_per_epoch: int) -> tf.data.Dataset:
  """Every training step's (float32 images [B, 28, 28, 1], int32 labels [B]), epoch after epoch.

  Step s of epoch e takes the examples data.epoch_order(N, hp.seed, e)[k * B:(k + 1) * B] (k = s
  - e * steps_per_epoch; the last batch of an epoch may be smaller) and augments them with
  train.augmented_images under train.step_seed(hp, s): the batches of the hand-built trainer.
  """
  orders = tf.constant(np.stack([data.epoch_order(len(labels), hp.seed, epoch)
                                 for epoch in range(hp.epochs)]).astype(np.int32))
  pixels, labels = tf.constant(pixels), tf.constant(labels)
  batch_size = hp.batch_size

  def batch(step):
    k = step % steps_per_epoch
    indices = orders[step // steps_per_epoch, k * batch_size:(k + 1) * batch_size]
    images = train.augmented_images(tf.gather(pixels, indices), hp, train.step_seed(hp, step))
    return images, tf.gather(labels, indices)

  return tf.data.Dataset.range(hp.epochs * steps_per_epoch).map(batch).prefetch(1)


class _EvalHistory(tf_keras.callbacks.Callback):
  """(seconds since training began, validation accuracy) after each epoch, like the hand-built
  trainer's TrainingResult.eval_history."""

  def __init__(self):
    super().__init__()
    self.history, self._start = [], 0.0

  def on_train_begin(self, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.history.append((time.perf_counter() - self._start, float(logs["val_accuracy"])))


def train_and_export(train_files: Sequence[str], eval_files: Sequence[str],
                     serving_model_dir: str, model_run_dir: str,
                     config: Optional[Mapping[str, Any]] = None) -> train.TrainingResult:
  """Trains the Keras baseline, exports the signature contract, returns what the run achieved.

  TensorBoard logs go to model_run_dir (train/ and validation/, tf_keras' layout); there are no
  checkpoints (checkpoint_dir is empty).
  """
  hp, quantize, initializer = parse_config(config)
  tf_keras.utils.set_random_seed(hp.seed)
  train_pixels, train_labels = data.load_split(train_files)
  eval_pixels, eval_labels = data.load_split(eval_files)
  eval_images = features.to_images(eval_pixels).numpy()
  steps_per_epoch = math.ceil(len(train_labels) / hp.batch_size)
  model = build_model(hp, quantize, initializer)
  model.compile(optimizer=tf_keras.optimizers.Adam(
      TrainerSchedule(hp, steps_per_epoch, hp.epochs * steps_per_epoch)),
      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
  history = _EvalHistory()
  fit = model.fit(training_batches(train_pixels, train_labels, hp, steps_per_epoch),
                  epochs=hp.epochs, steps_per_epoch=steps_per_epoch,
                  validation_data=(eval_images, eval_labels), validation_batch_size=_EVAL_BATCH,
                  verbose=2, callbacks=[tf_keras.callbacks.TensorBoard(log_dir=model_run_dir),
                                        history])
  loss, accuracy = model.evaluate(eval_images, eval_labels, batch_size=_EVAL_BATCH, verbose=0)
  logging.info("Keras baseline (%s, quantize=%s): eval accuracy %.4f", hp.model, quantize,
               accuracy)
  export.save(export.ServingModule(model, lambda images: model(images, training=False)),
              serving_model_dir)
  seconds = history.history[-1][0] if history.history else 0.0
  epochs = len(fit.epoch)
  return train.TrainingResult(
      eval_accuracy=float(accuracy), eval_loss=float(loss), steps=epochs * steps_per_epoch,
      epochs=epochs, examples_per_second=epochs * len(train_labels) / seconds if seconds else 0.0,
      epoch_examples_per_second=(), train_seconds=seconds, eval_history=tuple(history.history),
      checkpoint_dir="")


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  train_and_export(fn_args.train_files, fn_args.eval_files, fn_args.serving_model_dir,
                   fn_args.model_run_dir, fn_args.custom_config)
