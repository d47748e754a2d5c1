"""The project's single full-int8 TFLite conversion, shared by the evaluator and the pusher.

The evaluator blesses the sha256 of these bytes and the pusher refuses to ship different bytes, so
both must call this one function (conversion is deterministic for one SavedModel).
"""

import tensorflow as tf

from components import features


class Int8ConversionError(ValueError):
  """The SavedModel cannot be converted to a full-int8 TFLite model."""


def convert_to_int8_tflite(saved_model_dir: str,
                           signature_key: str = features.SINGLE_IMAGE_SIGNATURE) -> bytes:
  """Converts the fake-quant SavedModel's batch-1 signature to full-int8 TFLite bytes.

  The ranges come from the model's FakeQuant ops, so no representative dataset is needed; input and
  output are int8 (the Edge TPU runs integer tensors only).
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
