"""The Keras baseline: seed model + tfmot QAT, exported with the same signature contract."""

import os

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf

from core import contract
from core import features
from core import int8_tflite
from tests import fixtures_model
from trainer_module import keras_baseline
from trainer_module import run_test

pytestmark = pytest.mark.integration  # Runs TFX pipelines or trains models.


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
  hp, quantize = keras_baseline.parse_config({})
  assert (hp.model, hp.mlp_units, hp.dropout, hp.epochs, quantize) == ("mlp", 128, 0.2, 5, False)
