"""Model artifacts for the Int8Evaluator tests: the trainer's slice models laid out as TFX Models.

A Trainer's Model artifact holds its SavedModel in `Format-Serving/` (tfx.utils.path_utils); the
fixtures copy the trainer fixtures' SavedModels there. The two broken models are trivial tf.Modules
with the wrong signatures or no quantization; they stand in for no real model.
"""

import shutil

import pytest
import tensorflow as tf
from tfx.utils import path_utils

from core import contract


def as_model_artifact_dir(saved_model_dir: str, model_uri: str) -> str:
  """Copies a SavedModel to where a Model artifact at `model_uri` keeps it; returns model_uri."""
  shutil.copytree(saved_model_dir, path_utils.serving_model_dir(model_uri))
  return model_uri


@pytest.fixture(scope="session")
def trained_model_uri(trained_model_dir, tmp_path_factory) -> str:
  return as_model_artifact_dir(trained_model_dir, str(tmp_path_factory.mktemp("trained_model_uri")))


@pytest.fixture(scope="session")
def untrained_model_uri(untrained_model_dir, tmp_path_factory) -> str:
  return as_model_artifact_dir(untrained_model_dir,
                               str(tmp_path_factory.mktemp("untrained_model_uri")))


@pytest.fixture(scope="session")
def wrong_signature_model_uri(tmp_path_factory) -> str:
  """A SavedModel whose only signature doubles a vector: none of the image signatures."""
  module = tf.Module()
  module.double = tf.function(lambda x: {"doubled": 2 * x},
                              input_signature=[tf.TensorSpec([None], tf.float32)])
  model_uri = str(tmp_path_factory.mktemp("wrong_signature_model_uri"))
  tf.saved_model.save(module, path_utils.serving_model_dir(model_uri),
                      signatures={"double": module.double})
  return model_uri


@pytest.fixture(scope="session")
def float_only_model_uri(tmp_path_factory) -> str:
  """The right signatures over a float softmax without FakeQuant ops: no int8 conversion exists
  (full-int8 conversion needs quantization ranges, and this model carries none)."""
  module = tf.Module()
  module.weights = tf.Variable(tf.zeros([contract.NUM_PIXELS, contract.NUM_CLASSES]))

  def predict(images):
    flat = tf.reshape(images, [-1, contract.NUM_PIXELS])
    return {contract.PROBABILITIES_OUTPUT: tf.nn.softmax(tf.matmul(flat, module.weights))}

  image_shape = [contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1]
  signatures = {
      name: tf.function(predict, input_signature=[
          tf.TensorSpec([batch, *image_shape], tf.float32, name=contract.IMAGES_INPUT)])
      for name, batch in ((contract.PREDICT_IMAGES_SIGNATURE, None),
                          (contract.SINGLE_IMAGE_SIGNATURE, 1))
  }
  model_uri = str(tmp_path_factory.mktemp("float_only_model_uri"))
  tf.saved_model.save(module, path_utils.serving_model_dir(model_uri), signatures=signatures)
  return model_uri
