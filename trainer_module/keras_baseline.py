"""Keras baseline: the seed's Keras model, optionally quantization-aware through tfmot.

Trainer(run_fn='trainer_module.keras_baseline.run_fn', custom_config={...}) trains
Flatten - Dense 128 ReLU - Dropout 0.2 - Dense 10 softmax with Adam for 5 epochs (tf_keras, the
Keras 2 that tensorflow-model-optimization needs) and exports the same signature contract as the
hand-built trainer, so it goes through the same evaluator. With "quantize": true the model is
wrapped by tfmot's quantize_model; without it the float model does not convert to full int8 (no
representative dataset), which the evaluator reports as a conversion failure.
"""

from typing import Any, Mapping, Optional, Tuple

from absl import logging
import tensorflow_model_optimization as tfmot
import tf_keras
from tfx.components.trainer import fn_args_utils

from core import config_values
from core import contract
from core import features
from trainer_module import data
from trainer_module import export
from trainer_module import hparams as hparams_lib

QUANTIZE_KEY = "quantize"
# The seed's Keras example; the hand-built trainer's defaults differ.
KERAS_DEFAULTS = {"model": "mlp", "mlp_units": 128, "dropout": 0.2, "epochs": 5,
                  "learning_rate": 1e-3, "lr_schedule": "constant"}
# HParams fields this baseline honours (plus "quantize"); others are rejected, not ignored.
KERAS_KEYS = frozenset({"model", "epochs", "batch_size", "learning_rate", "dropout",
                        "conv_filters", "conv_kernel_size", "dense_units", "mlp_units", "seed"})


def parse_config(config: Optional[Mapping[str, Any]]) -> Tuple[hparams_lib.HParams, bool]:
  """Returns (hparams with the seed's Keras defaults, quantize) from a custom_config."""
  config = dict(config or {})
  quantize = config_values.parse_bool(QUANTIZE_KEY, config.pop(QUANTIZE_KEY, False))
  config.pop(hparams_lib.CODE_FINGERPRINT_KEY, None)  # Follows the code for the cache only.
  unsupported = sorted(set(config) - KERAS_KEYS)
  if unsupported:
    raise ValueError(f"The Keras baseline does not support {unsupported}; it takes "
                     f"{sorted(KERAS_KEYS | {QUANTIZE_KEY})}.")
  return hparams_lib.HParams.from_config({**KERAS_DEFAULTS, **config}), quantize


def build_model(hp: hparams_lib.HParams, quantize: bool) -> tf_keras.Model:
  """The seed's MLP (model "mlp") or the hand-built CNN's architecture (model "cnn") in Keras."""
  layers = tf_keras.layers
  body = [layers.InputLayer(input_shape=(contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1))]
  if hp.model == "cnn":
    for filters in hp.conv_filters:
      body += [layers.Conv2D(filters, hp.conv_kernel_size, padding="same", activation="relu"),
               layers.MaxPooling2D(2, padding="same")]
    body += [layers.Flatten(), layers.Dense(hp.dense_units, activation="relu")]
  else:
    body += [layers.Flatten(), layers.Dense(hp.mlp_units, activation="relu")]
  body += [layers.Dropout(hp.dropout), layers.Dense(contract.NUM_CLASSES, activation="softmax")]
  model = tf_keras.Sequential(body)
  return tfmot.quantization.keras.quantize_model(model) if quantize else model


def train_and_export(train_files, eval_files, serving_model_dir: str, model_run_dir: str,
                     config: Optional[Mapping[str, Any]] = None) -> float:
  """Trains the Keras baseline, exports the signature contract, returns the eval accuracy."""
  hp, quantize = parse_config(config)
  tf_keras.utils.set_random_seed(hp.seed)
  train_pixels, train_labels = data.load_split(train_files)
  eval_pixels, eval_labels = data.load_split(eval_files)
  train_images = features.to_images(train_pixels).numpy()
  eval_images = features.to_images(eval_pixels).numpy()
  model = build_model(hp, quantize)
  model.compile(optimizer=tf_keras.optimizers.Adam(hp.learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
  model.fit(train_images, train_labels, batch_size=hp.batch_size, epochs=hp.epochs,
            validation_data=(eval_images, eval_labels), verbose=2,
            callbacks=[tf_keras.callbacks.TensorBoard(log_dir=model_run_dir)])
  _, accuracy = model.evaluate(eval_images, eval_labels, verbose=0)
  logging.info("Keras baseline (%s, quantize=%s): eval accuracy %.4f", hp.model, quantize,
               accuracy)
  export.save(export.ServingModule(model, lambda images: model(images, training=False)),
              serving_model_dir)
  return float(accuracy)


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  train_and_export(fn_args.train_files, fn_args.eval_files, fn_args.serving_model_dir,
                   fn_args.model_run_dir, fn_args.custom_config)
