"""The project's single full-int8 TFLite conversion, shared by the evaluator and the pusher.

The evaluator blesses the sha256 of these bytes (`model_sha256`) and the pusher refuses to ship
different bytes, so both must call these functions (conversion is deterministic for one SavedModel).
"""

import hashlib

import tensorflow as tf

from components import contract
from components import errors


class Int8ConversionError(errors.PipelineInputError):
  """The SavedModel cannot be converted to a full-int8 TFLite model."""


def convert_to_int8_tflite(saved_model_dir: str,
                           signature_key: str = contract.SINGLE_IMAGE_SIGNATURE) -> bytes:
  """Converts the fake-quant SavedModel's batch-1 signature to full-int8 TFLite bytes.

  The ranges come from the model's FakeQuant ops, so no representative dataset is needed; input and
  output are int8 (the Edge TPU runs integer tensors only): input [1, 28, 28, 1] int8 (scale 1/255,
  zero point -128 for this project's models), output [1, 10] int8 probabilities.

  Raises:
    Int8ConversionError: naming the model, whatever the converter raised.
  """
  try:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[signature_key])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()
  except Exception as e:  # The converter raises many unrelated types; name the model either way.
    raise Int8ConversionError(
        f"SavedModel at {saved_model_dir} (signature {signature_key!r}) does not convert to "
        f"full-int8 TFLite: {e}") from e


def model_sha256(model_content: bytes) -> str:
  """The hex SHA-256 of int8 TFLite bytes: what the evaluator blesses and the pusher ships."""
  return hashlib.sha256(model_content).hexdigest()
