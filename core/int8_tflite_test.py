"""The int8 conversion's post-training mode on a small float model (QAT mode: int8_runtime_test)."""

import numpy as np
import pytest
import tensorflow as tf

from core import contract
from core import features
from core import int8_runtime
from core import int8_tflite
from tests import mnist_slices

NUM_IMAGES = 200


class _FloatClassifier(tf.Module):
  """A float linear softmax classifier with fixed random weights: no FakeQuant op anywhere."""

  def __init__(self):
    super().__init__()
    self.w = tf.Variable(tf.random.stateless_normal([contract.NUM_PIXELS, contract.NUM_CLASSES],
                                                    seed=[1, 2], stddev=0.1))
    self.b = tf.Variable(tf.zeros([contract.NUM_CLASSES]))

  @tf.function(input_signature=[tf.TensorSpec(
      [1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1], tf.float32,
      name=contract.IMAGES_INPUT)])
  def predict_single_image(self, images):
    logits = tf.matmul(tf.reshape(images, [-1, contract.NUM_PIXELS]), self.w) + self.b
    return {contract.PROBABILITIES_OUTPUT: tf.nn.softmax(logits)}


@pytest.fixture(scope="module")
def float_model_dir(tmp_path_factory) -> str:
  path = str(tmp_path_factory.mktemp("float_model"))
  module = _FloatClassifier()
  tf.saved_model.save(module, path, signatures={
      contract.SINGLE_IMAGE_SIGNATURE: module.predict_single_image})
  return path


def _images(split: str) -> np.ndarray:
  pixels, _ = mnist_slices.load_full(split)
  return features.to_images(pixels[:NUM_IMAGES].reshape(-1, contract.NUM_PIXELS)).numpy()


def test_post_training_quantization_gives_a_full_int8_model_that_agrees(float_model_dir):
  model_content = int8_tflite.convert_to_int8_tflite(
      float_model_dir, representative_images=_images(contract.TRAIN_SPLIT))
  classifier = int8_runtime.Int8Classifier(model_content)  # Raises unless integer I/O.
  scale, zero_point = classifier.input_quantization
  # Calibrated on [0, 1], with the default uint8 input: the pixel byte is the quantized value.
  assert classifier.input_dtype == contract.DEFAULT_IO_DTYPE == "uint8"
  assert scale == pytest.approx(1 / 255, rel=0.01) and zero_point == 0
  test_images = _images(contract.EVAL_SPLIT)
  expected = tf.saved_model.load(float_model_dir).signatures[contract.SINGLE_IMAGE_SIGNATURE]
  float_classes = [int(np.argmax(expected(images=image[np.newaxis])[
      contract.PROBABILITIES_OUTPUT])) for image in test_images]
  int8_classes = [int(np.argmax(classifier.invoke_quantized(classifier.quantize_images(image))))
                  for image in test_images]
  assert np.mean(np.array(float_classes) == np.array(int8_classes)) >= 0.9


def test_a_float_model_without_representative_images_is_refused(float_model_dir):
  with pytest.raises(int8_tflite.Int8ConversionError, match=float_model_dir):
    int8_runtime.Int8Classifier(int8_tflite.convert_to_int8_tflite(float_model_dir))


def test_empty_representative_images_are_refused(float_model_dir):
  with pytest.raises(int8_tflite.Int8ConversionError, match="non-empty"):
    int8_tflite.convert_to_int8_tflite(float_model_dir, representative_images=np.zeros(
        [0, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1], np.float32))
