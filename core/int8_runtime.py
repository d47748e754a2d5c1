"""Runs the full-int8 TFLite model on a CPU without TensorFlow (numpy + ai_edge_litert only).

The evaluator, serving (`mnist-tfx serve`, `predict`) and `mnist-tfx compare` run the exact bytes
that `core.int8_tflite.convert_to_int8_tflite` produced through this one helper, so accuracy is
measured the way devices compute it: pixels are quantized with the model's own input scale and zero
point and the outputs are dequantized with the output's. Both I/O types of contract.IO_DTYPES run:
uint8 I/O (input scale 1/255, zero point 0: the quantized value is the pixel itself) and int8 I/O
(scale 1/255, zero point -128: pixel - 128); the layers inside are int8 either way.

The converted model has a static batch of 1 (the Edge TPU rejects dynamic shapes). For batched
throughput on a CPU the input is resized to [N, ...] and the tensors re-allocated; the arithmetic
per image is unchanged.
"""

from typing import Any, Optional, Sequence, Tuple

from ai_edge_litert.interpreter import Interpreter
import numpy as np

from core import contract

# The 8-bit tensor types a fully integer-quantized model can take and give (numpy dtypes).
IO_TYPES = (np.uint8, np.int8)


class Int8ModelError(ValueError):
  """The TFLite bytes are not a single-input, single-output fully integer-quantized model."""


class Int8Classifier:
  """One TFLite interpreter over full-int8 model bytes, with (de)quantization at its edges.

  Input and output may each be uint8 or int8 (IO_TYPES); quantize_* and dequantize use the
  tensor's own type, scale and zero point, so callers never depend on which kind the model is.

  Not thread-safe (TFLite interpreters are not): give each thread or Beam DoFn instance its own.
  """

  def __init__(self, model_content: bytes, num_threads: Optional[int] = None,
               delegates: Optional[Sequence[Any]] = None):
    """Loads `model_content` (TFLite flatbuffer bytes); `num_threads` is passed to TFLite.

    `delegates`: LiteRT delegates (`ai_edge_litert.interpreter.load_delegate(...)`), e.g. the
    Edge TPU's for an edgetpu_compiler output; such a model keeps its static batch of 1.
    """
    self._interpreter = Interpreter(model_content=model_content, num_threads=num_threads,
                                    experimental_delegates=delegates)
    inputs = self._interpreter.get_input_details()
    outputs = self._interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
      raise Int8ModelError(
          f"expected one input and one output tensor, got {len(inputs)} and {len(outputs)}")
    self._input = inputs[0]
    self._output = outputs[0]
    for role, detail in (("input", self._input), ("output", self._output)):
      if detail["dtype"] not in IO_TYPES:
        raise Int8ModelError(
            f"{role} tensor {detail['name']!r} is {np.dtype(detail['dtype']).name}, not uint8 or "
            "int8: the model is not fully integer-quantized")
      if detail["quantization"][0] == 0:
        raise Int8ModelError(f"{role} tensor {detail['name']!r} has no quantization parameters")
    # The shape the model was converted with, e.g. (1, 28, 28, 1); one example is shape[1:].
    self.example_shape: Tuple[int, ...] = tuple(int(d) for d in self._input["shape"][1:])
    self._batch_size = int(self._input["shape"][0])
    self._interpreter.allocate_tensors()

  @property
  def input_dtype(self) -> np.dtype:
    """The input tensor's type, uint8 or int8."""
    return np.dtype(self._input["dtype"])

  @property
  def output_dtype(self) -> np.dtype:
    """The output tensor's type, uint8 or int8."""
    return np.dtype(self._output["dtype"])

  @property
  def input_quantization(self) -> Tuple[float, int]:
    """(scale, zero_point) of the input: real value = scale * (q - zero_point)."""
    scale, zero_point = self._input["quantization"]
    return float(scale), int(zero_point)

  @property
  def output_quantization(self) -> Tuple[float, int]:
    """(scale, zero_point) of the output."""
    scale, zero_point = self._output["quantization"]
    return float(scale), int(zero_point)

  def quantize_images(self, images: np.ndarray) -> np.ndarray:
    """Maps float images in [0, 1] to the model's input type (round to nearest, saturate)."""
    scale, zero_point = self.input_quantization
    limits = np.iinfo(self.input_dtype)
    quantized = np.rint(np.asarray(images, np.float64) / scale) + zero_point
    return np.clip(quantized, limits.min, limits.max).astype(self.input_dtype).reshape(
        (-1,) + self.example_shape)

  def quantize_pixels(self, pixels: np.ndarray) -> np.ndarray:
    """Maps integer pixels 0-255 (any shape holding whole images) to the model's input type."""
    return self.quantize_images(np.asarray(pixels, np.float64) / contract.MAX_PIXEL_VALUE)

  def dequantize(self, quantized_outputs: np.ndarray) -> np.ndarray:
    """Maps the model's uint8 or int8 outputs to float32 probabilities."""
    scale, zero_point = self.output_quantization
    return (scale * (quantized_outputs.astype(np.float32) - zero_point)).astype(np.float32)

  def invoke_quantized(self, quantized_inputs: np.ndarray) -> np.ndarray:
    """Runs quantized inputs [N, *example_shape] (the input's type) and returns the raw outputs
    [N, ...] (the output's type).

    Resizes the interpreter to batch N when N differs from the current batch (costs one tensor
    re-allocation, so keep N steady for throughput).
    """
    batch_size = quantized_inputs.shape[0]
    if batch_size != self._batch_size:
      self._interpreter.resize_tensor_input(self._input["index"],
                                            [batch_size, *self.example_shape], strict=False)
      self._interpreter.allocate_tensors()
      self._batch_size = batch_size
    self._interpreter.set_tensor(self._input["index"], quantized_inputs)
    self._interpreter.invoke()
    return self._interpreter.get_tensor(self._output["index"])

  def predict_pixels(self, pixels: np.ndarray) -> np.ndarray:
    """Float probabilities [N, classes] for integer pixels 0-255 holding N whole images."""
    return self.dequantize(self.invoke_quantized(self.quantize_pixels(pixels)))

