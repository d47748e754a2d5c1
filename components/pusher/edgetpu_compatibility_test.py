"""Tests of the Edge TPU compatibility check on real TFLite flatbuffers.

The negative cases are tiny Keras models converted here (float, dynamic batch, an unsupported
operator, a Softmax over a 3-D tensor); their weights are untrained because only their structure
matters, and their int8 ranges come from real MNIST images. The positive case is the project's own
trained model through the shared int8 conversion.
"""

from typing import List, Optional

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
import tflite

from components.pusher import edgetpu_compatibility as compat
from core import contract
from core import int8_tflite
from tests import mnist_slices

# The converter warns that the float models' inputs carry no statistics; they need none.
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")


@pytest.fixture(scope="module")
def calibration_images() -> np.ndarray:
  images, _ = mnist_slices.load_full("train")
  return images[:32].astype(np.float32)[..., None] / 255.0


def _convert(calibration_images: np.ndarray, batch_size: Optional[int] = 1,
             middle: Optional[tf_keras.layers.Layer] = None, quantize: bool = True,
             softmax_on_feature_map: bool = False, io_type: tf.DType = tf.int8) -> bytes:
  """A small conv net (conv, pool, [middle], flatten, dense, softmax) as TFLite bytes."""
  inputs = tf_keras.Input((28, 28, 1), batch_size=batch_size)
  hidden = tf_keras.layers.Conv2D(4, 3, activation="relu")(inputs)
  if softmax_on_feature_map:
    hidden = tf_keras.layers.Softmax()(hidden)
  hidden = tf_keras.layers.MaxPool2D()(hidden)
  if middle is not None:
    hidden = middle(hidden)
  hidden = tf_keras.layers.Flatten()(hidden)
  outputs = tf_keras.layers.Dense(10, activation="softmax")(hidden)
  converter = tf.lite.TFLiteConverter.from_keras_model(tf_keras.Model(inputs, outputs))
  if quantize:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in calibration_images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
  return converter.convert()


def _interpreter_op_names(model_content: bytes) -> List[str]:
  """The operators in execution order, as the TFLite runtime itself lists them."""
  interpreter = Interpreter(model_content=model_content)
  # The runtime's own operator list (a private but long-standing interpreter method).
  return [op["op_name"] for op in interpreter._get_ops_details()]


def test_float_model_is_rejected(calibration_images):
  model_content = _convert(calibration_images, quantize=False)
  report = compat.check_edgetpu_compatibility(model_content)
  assert not report.fully_mapped
  assert report.operations_on_edgetpu == 0
  assert report.operations_total == len(_interpreter_op_names(model_content))
  assert report.operators[0].status.startswith(compat.UNSUPPORTED_DATA_TYPE)
  assert "FLOAT32" in report.operators[0].status
  assert "FLOAT32" in report.summary()


def test_dynamic_batch_model_is_rejected(calibration_images):
  model_content = _convert(calibration_images, batch_size=None)
  report = compat.check_edgetpu_compatibility(model_content)
  assert not report.fully_mapped
  assert report.operations_on_edgetpu == 0
  assert any("dynamic batch" in problem for problem in report.model_problems)
  assert any("dynamic shapes" in problem for problem in report.model_problems)
  assert all(op.status == compat.MODEL_REJECTED for op in report.operators)
  # The same network with a static batch of 1 maps completely: the batch is the only problem.
  assert compat.check_edgetpu_compatibility(_convert(calibration_images)).fully_mapped


def test_unsupported_operator_stops_the_mapping(calibration_images):
  model_content = _convert(calibration_images, middle=tf_keras.layers.LeakyReLU())
  report = compat.check_edgetpu_compatibility(model_content)
  op_names = _interpreter_op_names(model_content)
  stop = op_names.index("LEAKY_RELU")
  assert 0 < stop < len(op_names) - 1  # Supported operators on both sides of it.
  assert not report.fully_mapped
  assert [op.name for op in report.operators] == op_names
  assert report.operations_on_edgetpu == stop
  assert report.operations_on_cpu == len(op_names) - stop
  assert report.first_unmapped.name == "LEAKY_RELU"
  assert report.first_unmapped.status == compat.NOT_SUPPORTED
  # Everything after the first unsupported operator runs on the CPU, even supported operators.
  assert all(op.status == compat.AFTER_UNSUPPORTED for op in report.operators[stop + 1:])
  log = report.format_log()
  assert f"Number of operations that will run on Edge TPU: {stop}" in log
  assert "LEAKY_RELU" in log and compat.NOT_SUPPORTED in log


def test_a_quantize_from_a_float_input_stays_on_the_cpu(calibration_images):
  """int8 layers behind float input and output: the converter adds QUANTIZE (float32 -> int8) and
  DEQUANTIZE (int8 -> float32) at the edges, which the Edge TPU cannot run."""
  model_content = _convert(calibration_images, io_type=tf.float32)
  op_names = _interpreter_op_names(model_content)
  assert (op_names[0], op_names[-1]) == ("QUANTIZE", "DEQUANTIZE")
  report = compat.check_edgetpu_compatibility(model_content)
  assert report.first_unmapped is report.operators[0]
  assert report.operators[0].status.startswith(compat.UNSUPPORTED_DATA_TYPE)
  assert "FLOAT32" in report.operators[0].status
  assert report.operators[-1].status == compat.NOT_SUPPORTED


def test_softmax_needs_a_1d_input(calibration_images):
  model_content = _convert(calibration_images, softmax_on_feature_map=True)
  report = compat.check_edgetpu_compatibility(model_content)
  softmaxes = [op for op in report.operators if op.name == "SOFTMAX"]
  assert len(softmaxes) == 2
  assert "input must be 1-D" in softmaxes[0].status  # Over the [1, 26, 26, 4] feature map.
  assert report.first_unmapped is softmaxes[0]
  assert not report.fully_mapped


def test_not_a_flatbuffer_is_an_error():
  with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
    compat.check_edgetpu_compatibility(b"this is not a model")


def test_rule_table_names_real_tflite_operators():
  builtin_names = set(tflite.utils.BUILTIN_OPCODE2NAME.values())
  assert set(compat.SUPPORTED_OPERATORS) <= builtin_names
  assert "DEQUANTIZE" not in compat.SUPPORTED_OPERATORS  # Float output stays on the CPU.


@pytest.mark.parametrize("io_dtype", contract.IO_DTYPES)
def test_project_model_maps_completely(trained_model_dir, io_dtype):
  model_content = int8_tflite.convert_to_int8_tflite(trained_model_dir, io_dtype=io_dtype)
  report = compat.check_edgetpu_compatibility(model_content)
  op_names = _interpreter_op_names(model_content)
  assert report.fully_mapped, report.format_log()
  assert report.operations_on_edgetpu == report.operations_total == len(op_names)
  assert [op.name for op in report.operators] == op_names
  # uint8 I/O adds a QUANTIZE at each edge (uint8 -> int8, int8 -> uint8); both map.
  edges = (op_names[0], op_names[-1])
  assert edges == (("QUANTIZE", "QUANTIZE") if io_dtype == contract.UINT8_IO else
                   ("CONV_2D", "SOFTMAX"))
  io = compat.describe_io(model_content)
  interpreter = Interpreter(model_content=model_content)
  [expected_input] = interpreter.get_input_details()
  [expected_output] = interpreter.get_output_details()
  assert io["inputs"][0]["shape"] == list(expected_input["shape"]) == [1, 28, 28, 1]
  assert io["inputs"][0]["dtype"] == io["outputs"][0]["dtype"] == io_dtype
  assert (io["inputs"][0]["scale"], io["inputs"][0]["zero_point"]) == pytest.approx(
      expected_input["quantization"])
  assert (io["outputs"][0]["scale"], io["outputs"][0]["zero_point"]) == pytest.approx(
      expected_output["quantization"])
