"""The exported SavedModel: the signature contract, and its full-int8 TFLite conversion."""

import collections

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf
import tflite

from core import contract
from core import features
from core import int8_tflite
from tests import fixtures_model

# What the Edge TPU compiler maps whole; any QUANTIZE/DEQUANTIZE means float crept in.
EXPECTED_INT8_OPS = {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}
_OP_NAMES = {code: name for name, code in vars(tflite.BuiltinOperator).items()
             if not name.startswith("_")}


@pytest.fixture(scope="module")
def slice_eval():
  return fixtures_model.slice_eval_digits()


@pytest.fixture(scope="module")
def int8_model(trained_model_dir) -> bytes:
  """The export's int8 layers alone: int8 I/O, without the QUANTIZE edges of uint8 I/O."""
  return int8_tflite.convert_to_int8_tflite(trained_model_dir, io_dtype=contract.INT8_IO)


def _scaled(images: np.ndarray) -> np.ndarray:
  return features.to_images(images.reshape(len(images), -1)).numpy()


def _op_names(model_bytes: bytes):
  model = tflite.Model.GetRootAsModel(model_bytes, 0)
  graph = model.Subgraphs(0)
  names = []
  for i in range(graph.OperatorsLength()):
    code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
    names.append(_OP_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
  return names


def test_signatures_agree_on_the_same_images(trained_model_dir, slice_eval):
  images, labels = slice_eval[0][:16], slice_eval[1][:16]
  loaded = tf.saved_model.load(trained_model_dir)
  assert set(loaded.signatures) == {contract.SERVING_SIGNATURE, contract.PREDICT_IMAGES_SIGNATURE,
                                    contract.SINGLE_IMAGE_SIGNATURE}
  examples = tf.constant([features.to_tf_example(image, label).SerializeToString()
                          for image, label in zip(images, labels, strict=True)])
  from_examples = loaded.signatures[contract.SERVING_SIGNATURE](
      **{contract.EXAMPLES_INPUT: examples})[contract.PROBABILITIES_OUTPUT].numpy()
  from_images = loaded.signatures[contract.PREDICT_IMAGES_SIGNATURE](
      **{contract.IMAGES_INPUT: tf.constant(_scaled(images))})[
          contract.PROBABILITIES_OUTPUT].numpy()
  single = np.concatenate([loaded.signatures[contract.SINGLE_IMAGE_SIGNATURE](
      **{contract.IMAGES_INPUT: tf.constant(_scaled(image[np.newaxis]))})[
          contract.PROBABILITIES_OUTPUT].numpy() for image in images])
  assert from_examples.shape == (16, contract.NUM_CLASSES)
  np.testing.assert_allclose(from_examples.sum(axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(from_images, from_examples, atol=1e-6)
  np.testing.assert_allclose(single, from_examples, atol=1e-6)


def test_serving_default_ignores_a_missing_label(trained_model_dir, slice_eval):
  image = slice_eval[0][0]
  unlabeled = tf.train.Example(features=tf.train.Features(feature={
      contract.IMAGE_KEY: tf.train.Feature(int64_list=tf.train.Int64List(
          value=image.reshape(-1).astype(np.int64)))}))
  loaded = tf.saved_model.load(trained_model_dir)
  probabilities = loaded.signatures[contract.SERVING_SIGNATURE](
      **{contract.EXAMPLES_INPUT: tf.constant([unlabeled.SerializeToString()])})[
          contract.PROBABILITIES_OUTPUT]
  assert probabilities.shape == (1, contract.NUM_CLASSES)


def test_int8_tflite_has_only_edgetpu_ops_and_int8_io(int8_model):
  assert set(_op_names(int8_model)) == EXPECTED_INT8_OPS
  interpreter = Interpreter(model_content=int8_model)
  (input_details,), (output_details,) = (interpreter.get_input_details(),
                                         interpreter.get_output_details())
  assert input_details["dtype"] == np.int8 and output_details["dtype"] == np.int8
  assert list(input_details["shape"]) == [1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1]
  scale, zero_point = input_details["quantization"]
  assert scale == pytest.approx(1.0 / contract.MAX_PIXEL_VALUE) and zero_point == -128


def test_int8_accuracy_matches_fake_quant_float(trained_model_dir, int8_model, slice_eval):
  images, labels = slice_eval
  loaded = tf.saved_model.load(trained_model_dir)
  float_predictions = np.argmax(loaded.signatures[contract.PREDICT_IMAGES_SIGNATURE](
      **{contract.IMAGES_INPUT: tf.constant(_scaled(images))})[contract.PROBABILITIES_OUTPUT],
                                axis=1)
  interpreter = Interpreter(model_content=int8_model)
  interpreter.allocate_tensors()
  (input_details,), (output_details,) = (interpreter.get_input_details(),
                                         interpreter.get_output_details())
  scale, zero_point = input_details["quantization"]
  int8_predictions = []
  for image in _scaled(images):
    quantized = np.clip(np.round(image / scale) + zero_point, -128, 127).astype(np.int8)
    interpreter.set_tensor(input_details["index"], quantized[np.newaxis])
    interpreter.invoke()
    int8_predictions.append(np.argmax(interpreter.get_tensor(output_details["index"])[0]))
  float_accuracy = np.mean(float_predictions == labels)
  int8_accuracy = np.mean(np.array(int8_predictions) == labels)
  assert float_accuracy > 0.9
  assert abs(int8_accuracy - float_accuracy) <= 0.005


def test_untrained_model_is_exported_and_bad(untrained_model_dir, slice_eval):
  images, labels = slice_eval
  loaded = tf.saved_model.load(untrained_model_dir)
  predictions = np.argmax(loaded.signatures[contract.PREDICT_IMAGES_SIGNATURE](
      **{contract.IMAGES_INPUT: tf.constant(_scaled(images))})[contract.PROBABILITIES_OUTPUT],
                          axis=1)
  assert np.mean(predictions == labels) < 0.3


def test_mlp_variant_converts_to_int8(examples_dir, tmp_path):
  mlp = fixtures_model.train_on_slice(examples_dir, str(tmp_path),
                                     {**fixtures_model.SLICE_HPARAMS, "model": "mlp"})
  assert mlp.result.eval_accuracy > 0.8
  model_bytes = int8_tflite.convert_to_int8_tflite(mlp.serving_model_dir,
                                                   io_dtype=contract.INT8_IO)
  assert set(_op_names(model_bytes)) == {"RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}
  interpreter = Interpreter(model_content=model_bytes)
  assert interpreter.get_input_details()[0]["dtype"] == np.int8
  assert interpreter.get_output_details()[0]["dtype"] == np.int8


def test_accurate_preset_knobs_convert_to_edgetpu_int8(examples_dir, tmp_path):
  # The `accurate` preset's training-only knobs on (rotation/scale, AdamW, label smoothing): the
  # exported graph is the plain QAT CNN's, fully int8 and mapped to the Edge TPU.
  hparams = {**fixtures_model.SLICE_HPARAMS, "max_shift": 2, "max_rotation": 10.0,
             "max_scale": 0.1, "weight_decay": 0.05, "label_smoothing": 0.1}
  trained = fixtures_model.train_on_slice(examples_dir, str(tmp_path), hparams)
  assert trained.result.eval_accuracy > 0.8
  model_bytes = int8_tflite.convert_to_int8_tflite(trained.serving_model_dir,
                                                   io_dtype=contract.INT8_IO)
  assert collections.Counter(_op_names(model_bytes)) == {
      "CONV_2D": 3, "MAX_POOL_2D": 3, "RESHAPE": 1, "FULLY_CONNECTED": 2, "SOFTMAX": 1}
