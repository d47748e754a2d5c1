"""Exports the inference graph (fake quant on, range tracking and dropout off) as a SavedModel.

The three signatures are the contract in core/contract.py; predict_single_image is the one
core/int8_tflite.py converts for the Edge TPU.
"""

from typing import Callable

import tensorflow as tf

from core import contract
from core import features
from trainer_module import model as model_lib


class ServingModule(tf.Module):
  """Holds a trained model (its variables) and the three serving signatures around it."""

  def __init__(self, model: tf.Module, probabilities: Callable[[tf.Tensor], tf.Tensor]):
    super().__init__(name="serving")
    self.model = model
    self._probabilities_fn = probabilities

  def _probabilities(self, images: tf.Tensor):
    return {contract.PROBABILITIES_OUTPUT: self._probabilities_fn(images)}

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name=contract.EXAMPLES_INPUT)])
  def serve_examples(self, examples):
    pixels = tf.io.parse_example(
        examples, {contract.IMAGE_KEY: features.FEATURE_SPEC[contract.IMAGE_KEY]})
    return self._probabilities(features.to_images(pixels[contract.IMAGE_KEY]))

  @tf.function(autograph=False, input_signature=[tf.TensorSpec(
      [None, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1], tf.float32,
      name=contract.IMAGES_INPUT)])
  def predict_images(self, images):
    return self._probabilities(images)

  @tf.function(autograph=False, input_signature=[tf.TensorSpec(
      [1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1], tf.float32,
      name=contract.IMAGES_INPUT)])
  def predict_single_image(self, images):
    return self._probabilities(images)


def save(module: ServingModule, serving_model_dir: str) -> None:
  tf.saved_model.save(module, serving_model_dir, signatures={
      contract.SERVING_SIGNATURE: module.serve_examples,
      contract.PREDICT_IMAGES_SIGNATURE: module.predict_images,
      contract.SINGLE_IMAGE_SIGNATURE: module.predict_single_image,
  })


def export_saved_model(network: model_lib.Network, serving_model_dir: str) -> None:
  """Saves the QAT network's inference graph: fake quant on, no range updates, no dropout."""
  save(ServingModule(network, lambda images: tf.nn.softmax(
      network(images, quantize=True, training=False))), serving_model_dir)
