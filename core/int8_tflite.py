"""The project's single full-int8 TFLite conversion, shared by the evaluator and the pusher.

The evaluator blesses the sha256 of these bytes (`model_sha256`) and the pusher refuses to ship
different bytes, so both must call these functions with the same `io_dtype` (conversion is
deterministic for one SavedModel and I/O type).

Two modes, one converter setup, int8 layers inside and the I/O type of `io_dtype` at the edges:
  * quantization-aware (the pipeline's): the ranges come from the model's FakeQuant ops;
  * post-training full-integer quantization (`representative_images` given): a float model's
    ranges are calibrated on those images, TensorFlow's "full integer quantization" recipe
    (https://www.tensorflow.org/lite/performance/post_training_integer_quant), used by
    `mnist-tfx compare` to put the common train-in-float route beside QAT.
"""

from typing import Iterator, List, Optional

import numpy as np
import tensorflow as tf

from core import contract
from core import errors


class Int8ConversionError(errors.PipelineInputError):
  """The SavedModel cannot be converted to a full-int8 TFLite model."""


_IO_TYPES = {contract.UINT8_IO: tf.uint8, contract.INT8_IO: tf.int8}


def convert_to_int8_tflite(saved_model_dir: str,
                           signature_key: str = contract.SINGLE_IMAGE_SIGNATURE,
                           representative_images: Optional[np.ndarray] = None,
                           io_dtype: str = contract.DEFAULT_IO_DTYPE) -> bytes:
  """Converts the SavedModel's batch-1 signature to full-int8 TFLite bytes.

  Without `representative_images` (the pipeline's mode) the model must be quantization-aware: the
  ranges come from its FakeQuant ops. With them, the model is taken as a float model and quantized
  after training: every tensor's range is calibrated by running these images, float32
  [N, 28, 28, 1] in [0, 1] (the signature's input, one image per calibration step; a few hundred
  training images are TensorFlow's suggestion), and only int8 builtin operators are allowed, so an
  operator without an int8 kernel fails the conversion instead of staying float.

  Either way every layer is int8 (the Edge TPU runs integer tensors only), and input and output
  have the type `io_dtype` (contract.IO_DTYPES): input [1, 28, 28, 1], output [1, 10]
  probabilities.
    * "int8": input scale 1/255, zero point -128 for this project's QAT models (int8 = pixel - 128;
      calibrated for post-training quantization); int8 output.
    * "uint8": the converter's `inference_input_type = tf.uint8`, as in Coral's retraining
      tutorials: input scale 1/255, zero point 0 (the raw pixel byte is the quantized value), then
      a QUANTIZE operator to int8 with the same scale (q - 128, exact); uint8 output behind a
      QUANTIZE from the int8 softmax (zero point + 128, exact), as Coral's own models have. The
      int8 layers between (operators, weights, scales) are the int8 model's, so both kinds give
      the same answers.

  Raises:
    Int8ConversionError: naming the model, whatever the converter raised.
    ValueError: an `io_dtype` that is not one of contract.IO_DTYPES.
  """
  contract.check_io_dtype(io_dtype)
  try:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[signature_key])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = _IO_TYPES[io_dtype]
    converter.inference_output_type = _IO_TYPES[io_dtype]
    if representative_images is not None:
      converter.representative_dataset = _calibration_steps(representative_images)
      converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()
  except Exception as e:  # The converter raises many unrelated types; name the model either way.
    raise Int8ConversionError(
        f"SavedModel at {saved_model_dir} (signature {signature_key!r}) does not convert to "
        f"full-int8 TFLite with {io_dtype} input and output: {e}") from e


def _calibration_steps(images: np.ndarray):
  """The converter's representative dataset: a callable yielding [one float32 image [1, ...]]."""
  images = np.asarray(images, np.float32)
  if images.ndim != 4 or not len(images):
    raise ValueError(f"representative_images must be a non-empty [N, H, W, C] array, got shape "
                     f"{images.shape}")

  def steps() -> Iterator[List[np.ndarray]]:
    for image in images:
      yield [image[np.newaxis]]

  return steps
