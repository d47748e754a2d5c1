"""The project's one reader of TFLite flatbuffers (the `tflite` schema package, no runtime).

The Edge TPU compatibility check (components/pusher/edgetpu_compatibility.py) and the comparison's
model cost (mnist_tfx/compare/measure.py) read models through it. No TensorFlow import.
"""

from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import tflite

FILE_IDENTIFIER = b"TFL3"  # Bytes 4-8 of every TFLite flatbuffer.


def builtin_options(op: tflite.Operator, options_class: type) -> Any:
  """The operator's builtin options table read as `options_class` (e.g. tflite.Conv2DOptions);
  all defaults when the operator stores none."""
  table = op.BuiltinOptions()
  options = options_class()
  if table is not None:
    options.Init(table.Bytes, table.Pos)
  return options


class TfliteGraph:
  """Read access to the main subgraph of a TFLite flatbuffer (tensors, operators, constants)."""

  def __init__(self, model_content: bytes):
    """Raises ValueError when the bytes are not a TFLite flatbuffer or have no subgraph."""
    if len(model_content) < 8 or model_content[4:8] != FILE_IDENTIFIER:
      raise ValueError("not a TFLite flatbuffer (missing the 'TFL3' file identifier)")
    self.content = model_content
    self.model = tflite.Model.GetRootAs(model_content, 0)
    if self.model.SubgraphsLength() < 1:
      raise ValueError("the TFLite model has no subgraph")
    self.subgraph = self.model.Subgraphs(0)

  def tensor(self, index: int) -> tflite.Tensor:
    return self.subgraph.Tensors(index)

  def tensor_name(self, index: int) -> str:
    return self.tensor(index).Name().decode("utf-8", "replace")

  def shape(self, index: int) -> List[int]:
    return [int(d) for d in self.tensor(index).ShapeAsNumpy()] if self.tensor(
        index).ShapeLength() else []

  def shape_signature(self, index: int) -> List[int]:
    """The shape with -1 for dynamic dimensions (the plain shape when no signature is stored)."""
    tensor = self.tensor(index)
    if tensor.ShapeSignatureIsNone() or tensor.ShapeSignatureLength() == 0:
      return self.shape(index)
    return [int(d) for d in tensor.ShapeSignatureAsNumpy()]

  def constant_bytes(self, index: int) -> Optional[bytes]:
    """The tensor's constant data, or None when it is computed at run time."""
    buffer = self.model.Buffers(self.tensor(index).Buffer())
    if buffer.DataLength() > 0:
      return buffer.DataAsNumpy().tobytes()
    if buffer.Offset() > 1:  # Data stored after the flatbuffer (models over 2 GB).
      return self.content[buffer.Offset():buffer.Offset() + buffer.Size()]
    return None

  def constant_ints(self, index: int) -> Optional[np.ndarray]:
    data = self.constant_bytes(index)
    if data is None or self.tensor(index).Type() != tflite.TensorType.INT32:
      return None
    return np.frombuffer(data, dtype="<i4")

  def quantization(self, index: int) -> Optional[Dict[str, Any]]:
    """Per-tensor (or per-channel) scale and zero point; None when the tensor is not quantized."""
    params = self.tensor(index).Quantization()
    if params is None or params.ScaleLength() == 0:
      return None
    scales = [float(s) for s in params.ScaleAsNumpy()]
    zero_points = [int(z) for z in params.ZeroPointAsNumpy()] if params.ZeroPointLength() else [0]
    if len(scales) == 1:
      return {"scale": scales[0], "zero_point": zero_points[0]}
    return {"scale": scales, "zero_point": zero_points,
            "quantized_dimension": int(params.QuantizedDimension())}

  def operator_name(self, op: tflite.Operator) -> str:
    code = self.model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
      return f"CUSTOM ({code.CustomCode().decode('utf-8', 'replace')})"
    return tflite.opcode2name(builtin)

  def operator_version(self, op: tflite.Operator) -> int:
    return int(self.model.OperatorCodes(op.OpcodeIndex()).Version())


  def operators(self) -> Iterator[tflite.Operator]:
    """The main subgraph's operators in execution order."""
    for index in range(self.subgraph.OperatorsLength()):
      yield self.subgraph.Operators(index)
