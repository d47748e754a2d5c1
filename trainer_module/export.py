"""Exports the inference graph (fake quant on, range tracking and dropout off) as a SavedModel.

The three signatures are the contract in components/features.py; predict_single_image is the one
components/int8_tflite.py converts for the Edge TPU.
"""

import tensorflow as tf

from components import features
from trainer_module import model as model_lib


class ServingModule(tf.Module):
  """Holds the trained network and its three serving signatures."""

  def __init__(self, network: model_lib.Network):
    super().__init__(name="serving")
    self.network = network

  def _probabilities(self, images: tf.Tensor):
    logits = self.network(images, quantize=True, training=False)
    return {features.PROBABILITIES_OUTPUT: tf.nn.softmax(logits)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT)])
  def serve_examples(self, examples):
    pixels = tf.io.parse_example(
        examples, {features.IMAGE_KEY: features.FEATURE_SPEC[features.IMAGE_KEY]})
    return self._probabilities(features.to_images(pixels[features.IMAGE_KEY]))

  @tf.function(input_signature=[tf.TensorSpec(
      [None, features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1], tf.float32,
      name=features.IMAGES_INPUT)])
  def predict_images(self, images):
    return self._probabilities(images)

  @tf.function(input_signature=[tf.TensorSpec(
      [1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1], tf.float32,
      name=features.IMAGES_INPUT)])
  def predict_single_image(self, images):
    return self._probabilities(images)


def export_saved_model(network: model_lib.Network, serving_model_dir: str) -> None:
  module = ServingModule(network)
  tf.saved_model.save(module, serving_model_dir, signatures={
      features.SERVING_SIGNATURE: module.serve_examples,
      features.PREDICT_IMAGES_SIGNATURE: module.predict_images,
      features.SINGLE_IMAGE_SIGNATURE: module.predict_single_image,
  })
