"""The Keras baseline: seed model + tfmot QAT, exported with the same signature contract."""

import os

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from core import contract
from core import features
from core import int8_tflite
from tests import fixtures_model
from tests import mnist_slices
from trainer_module import data
from trainer_module import hparams as hparams_lib
from trainer_module import keras_baseline
from trainer_module import optimizer as optimizer_lib
from trainer_module import run_test


@pytest.mark.integration  # Runs the TFX Trainer.
def test_quantized_keras_baseline_in_the_tfx_trainer(examples_dir, tmp_path):
  model_uri, model_run_uri = run_test.run_trainer(
      examples_dir, str(tmp_path), "trainer_module.keras_baseline.run_fn",
      {"quantize": True, "epochs": 1, "batch_size": 32})
  assert tf.io.gfile.glob(os.path.join(model_run_uri, "train", "events.*"))  # TensorBoard.
  serving_dir = os.path.join(model_uri, "Format-Serving")
  loaded = tf.saved_model.load(serving_dir)
  assert set(loaded.signatures) == {contract.SERVING_SIGNATURE, contract.PREDICT_IMAGES_SIGNATURE,
                                    contract.SINGLE_IMAGE_SIGNATURE}
  image = tf.zeros([1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1])
  np.testing.assert_allclose(
      loaded.signatures[contract.SINGLE_IMAGE_SIGNATURE](images=image)["probabilities"],
      loaded.signatures[contract.PREDICT_IMAGES_SIGNATURE](images=image)["probabilities"],
      atol=1e-6)
  probabilities = loaded.signatures[contract.SERVING_SIGNATURE](examples=tf.constant(
      [features.to_tf_example(image, label).SerializeToString()
       for image, label in zip(*fixtures_model.slice_eval_digits(), strict=True)]))["probabilities"]
  assert np.mean(np.argmax(probabilities, axis=1) == fixtures_model.slice_eval_digits()[1]) > 0.8
  interpreter = Interpreter(model_content=int8_tflite.convert_to_int8_tflite(
      serving_dir, io_dtype=contract.INT8_IO))
  assert interpreter.get_input_details()[0]["dtype"] == np.int8
  assert interpreter.get_output_details()[0]["dtype"] == np.int8


def test_keras_baseline_rejects_hand_built_only_settings():
  with pytest.raises(ValueError, match=r"does not support \['quant_delay'\]"):
    keras_baseline.parse_config({"quant_delay": 100})
  hp, quantize, initializer = keras_baseline.parse_config({})
  assert (hp.model, hp.mlp_units, hp.dropout, hp.epochs, hp.learning_rate, hp.lr_schedule,
          hp.max_shift, quantize, initializer) == (
              "mlp", 128, 0.2, 5, 1e-3, "constant", 0, False, keras_baseline.GLOROT_UNIFORM)
  with pytest.raises(ValueError, match="Unknown initializer 'he_normal'"):
    keras_baseline.parse_config({"initializer": "he_normal"})


def test_keras_adam_under_the_trainer_schedule_takes_the_hand_built_steps():
  """Keras' Adam driven by TrainerSchedule makes the hand-built optimizer's updates, step for
  step: the same 0-based step through the one-cycle warm-up and decay, the same Adam."""
  hp = hparams_lib.HParams(epochs=2, learning_rate=0.05)  # one_cycle, 20 % warm-up.
  steps_per_epoch, total_steps = 5, 10
  gradients = [tf.constant(g, tf.float32)
               for g in np.random.default_rng(0).normal(size=(total_steps, 3))]
  keras_parameter, hand_parameter = tf.Variable([1.0, -2.0, 3.0]), tf.Variable([1.0, -2.0, 3.0])
  keras_adam = tf_keras.optimizers.Adam(
      keras_baseline.TrainerSchedule(hp, steps_per_epoch, total_steps))
  hand_adam = optimizer_lib.Adam([hand_parameter])
  for step, gradient in enumerate(gradients):
    keras_adam.apply_gradients([(gradient, keras_parameter)])
    hand_adam.apply(optimizer_lib.learning_rate(hp, step, steps_per_epoch, total_steps),
                    [gradient], [hand_parameter])
    np.testing.assert_allclose(keras_parameter.numpy(), hand_parameter.numpy(), rtol=1e-5)
  assert not np.allclose(hand_parameter.numpy(), [1.0, -2.0, 3.0])


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
  """image [28, 28] moved by (dy, dx) pixels, zero fill."""
  padded = np.pad(image, 1)
  return padded[1 - dy:29 - dy, 1 - dx:29 - dx]


def test_keras_batches_are_the_trainers_epoch_order_and_shift():
  images, labels = mnist_slices.load_full("train")
  count = 300
  pixels, labels = images[:count].reshape(count, -1), labels[:count].astype(np.int32)
  hp = hparams_lib.HParams(epochs=2, batch_size=128, max_shift=1, seed=3)
  steps_per_epoch = 3  # 128 + 128 + 44.
  batches = [(i.numpy(), y.numpy()) for i, y in keras_baseline.training_batches(
      pixels, labels, hp, steps_per_epoch)]
  assert [len(batch_labels) for _, batch_labels in batches] == [128, 128, 44] * 2
  moved = 0
  for epoch in range(2):
    order = data.epoch_order(count, hp.seed, epoch)
    epoch_batches = batches[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
    np.testing.assert_array_equal(np.concatenate([b for _, b in epoch_batches]), labels[order])
    for batch_images, source in zip(np.concatenate([b for b, _ in epoch_batches]),
                                    images[:count][order], strict=True):
      batch_pixels = np.rint(batch_images[..., 0] * contract.MAX_PIXEL_VALUE)
      offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if np.array_equal(batch_pixels, _shifted(source, dy, dx))]
      assert offsets, "not a 1-pixel shift of the example in the trainer's order"
      moved += (0, 0) not in offsets
  assert moved > count  # Most images moved (8 of the 9 offsets move).
