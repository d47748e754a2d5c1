"""int8_runtime on the trainer's slice model converted by the project's int8 conversion."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from core import contract
from core import int8_runtime
from core import int8_tflite
from tests import mnist_slices

NUM_IMAGES = 200


@pytest.fixture(scope="module")
def int8_model(trained_model_dir) -> bytes:
  return int8_tflite.convert_to_int8_tflite(trained_model_dir)


@pytest.fixture(scope="module")
def eval_images():
  images, labels = mnist_slices.load_full(contract.EVAL_SPLIT)
  return images[:NUM_IMAGES], labels[:NUM_IMAGES]


def test_conversion_is_deterministic(trained_model_dir, int8_model):
  assert int8_tflite.convert_to_int8_tflite(trained_model_dir) == int8_model


def test_quantizes_pixels_with_the_models_input_parameters(int8_model, eval_images):
  classifier = int8_runtime.Int8Classifier(int8_model)
  images, _ = eval_images
  scale, zero_point = classifier.input_quantization
  # The model's input range is [0, 1] (features.scale_pixels), so int8 = pixel - 128 exactly.
  assert (scale, zero_point) == (pytest.approx(1 / 255), -128)
  quantized = classifier.quantize_pixels(images)
  assert quantized.shape == (NUM_IMAGES, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1)
  np.testing.assert_array_equal(quantized.reshape(images.shape), images.astype(np.int16) - 128)
  np.testing.assert_array_equal(classifier.quantize_images(images / 255.0), quantized)


def test_batched_inference_matches_image_by_image(int8_model, eval_images):
  images, labels = eval_images
  single = int8_runtime.Int8Classifier(int8_model, num_threads=1)
  batched = int8_runtime.Int8Classifier(int8_model, num_threads=2)
  quantized = single.quantize_pixels(images)
  one_by_one = np.concatenate([single.invoke_quantized(quantized[i:i + 1])
                               for i in range(NUM_IMAGES)])
  for batch_size in (64, NUM_IMAGES):  # Resizes, then resizes again.
    outputs = np.concatenate([batched.invoke_quantized(quantized[start:start + batch_size])
                              for start in range(0, NUM_IMAGES, batch_size)])
    np.testing.assert_array_equal(outputs, one_by_one)
  scale, zero_point = single.output_quantization
  probabilities = batched.predict_pixels(images)
  np.testing.assert_allclose(probabilities, scale * (one_by_one.astype(np.float32) - zero_point))
  # A trained model: well above the 10 % of chance on real digits.
  assert np.mean(probabilities.argmax(axis=1) == labels) > 0.5


def test_rejects_a_float_tflite_model():
  dense = tf.function(lambda images: tf.nn.softmax(tf.reshape(images, [1, -1])[:, :10]),
                      input_signature=[tf.TensorSpec([1, 28, 28, 1], tf.float32)])
  float_model = tf.lite.TFLiteConverter.from_concrete_functions(
      [dense.get_concrete_function()], dense).convert()
  with pytest.raises(int8_runtime.Int8ModelError, match="is float32, not int8"):
    int8_runtime.Int8Classifier(float_model)


def test_imports_without_tensorflow():
  code = ("import sys; import core.int8_runtime; "
          "sys.exit('tensorflow' in sys.modules)")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
