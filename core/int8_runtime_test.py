"""int8_runtime on the trainer's slice model converted by the project's int8 conversion, with each
I/O type (uint8 and int8)."""

import subprocess
import sys
from typing import Dict

import numpy as np
import pytest
import tensorflow as tf

from core import contract
from core import int8_runtime
from core import int8_tflite
from tests import mnist_slices

NUM_IMAGES = 200


@pytest.fixture(scope="module")
def models(trained_model_dir) -> Dict[str, bytes]:
  """{io dtype: the slice model's bytes with that input and output type}."""
  return {io_dtype: int8_tflite.convert_to_int8_tflite(trained_model_dir, io_dtype=io_dtype)
          for io_dtype in contract.IO_DTYPES}


@pytest.fixture(scope="module")
def int8_model(models) -> bytes:
  return models[contract.INT8_IO]


@pytest.fixture(scope="module")
def eval_images():
  images, labels = mnist_slices.load_full(contract.EVAL_SPLIT)
  return images[:NUM_IMAGES], labels[:NUM_IMAGES]


def test_conversion_is_deterministic_and_defaults_to_uint8_io(trained_model_dir, models):
  assert int8_tflite.convert_to_int8_tflite(trained_model_dir) == models[contract.DEFAULT_IO_DTYPE]
  assert contract.DEFAULT_IO_DTYPE == contract.UINT8_IO
  assert models[contract.UINT8_IO] != models[contract.INT8_IO]


def test_an_unknown_io_dtype_is_refused(trained_model_dir):
  with pytest.raises(ValueError, match=r"io_dtype must be one of \['uint8', 'int8'\], got 'int16'"):
    int8_tflite.convert_to_int8_tflite(trained_model_dir, io_dtype="int16")


# The model's input range is [0, 1] (features.scale_pixels) and its softmax output [0, 1), so:
# uint8 I/O: the pixel byte is the quantized input (scale 1/255, zero point 0), output zero point 0;
# int8 I/O: the quantized input is pixel - 128 (zero point -128), output zero point -128.
@pytest.mark.parametrize("io_dtype, zero_point, offset", [
    (contract.UINT8_IO, 0, 0), (contract.INT8_IO, -128, -128)])
def test_quantizes_pixels_with_the_models_input_parameters(models, eval_images, io_dtype,
                                                           zero_point, offset):
  classifier = int8_runtime.Int8Classifier(models[io_dtype])
  images, _ = eval_images
  assert classifier.input_dtype == classifier.output_dtype == np.dtype(io_dtype)
  assert classifier.input_quantization == (pytest.approx(1 / 255), zero_point)
  assert classifier.output_quantization == (pytest.approx(1 / 256), zero_point)
  quantized = classifier.quantize_pixels(images)
  assert quantized.dtype == np.dtype(io_dtype)
  assert quantized.shape == (NUM_IMAGES, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1)
  np.testing.assert_array_equal(quantized.reshape(images.shape), images.astype(np.int16) + offset)
  np.testing.assert_array_equal(classifier.quantize_images(images / 255.0), quantized)


def test_uint8_and_int8_io_models_give_the_same_probabilities(models, eval_images):
  images, _ = eval_images
  probabilities = {io_dtype: int8_runtime.Int8Classifier(content).predict_pixels(images)
                   for io_dtype, content in models.items()}
  # The QUANTIZE operators at a uint8 model's edges only shift the zero point by 128 at the same
  # scale, so the int8 layers see the same values and the dequantized outputs are equal.
  np.testing.assert_array_equal(probabilities[contract.UINT8_IO], probabilities[contract.INT8_IO])


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
  with pytest.raises(int8_runtime.Int8ModelError, match="is float32, not uint8 or int8"):
    int8_runtime.Int8Classifier(float_model)


def test_imports_without_tensorflow():
  code = ("import sys; import core.int8_runtime; "
          "sys.exit('tensorflow' in sys.modules)")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
