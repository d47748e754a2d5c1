"""The project's one statement of what the Edge TPU can run, checked on a `.tflite` flatbuffer.

The rules follow Coral's "TensorFlow models on the Edge TPU"
(https://coral.ai/docs/edgetpu/models-intro/#supported-operations, Edge TPU Compiler 16 / runtime
14): 8-bit quantized tensors (int32 only for constant biases and shape/axis parameters), static
shapes with batch 1, tensors whose dimensions beyond the 3 innermost are 1, and only the operators
in the supported table, each with its documented limitations. Like the compiler, the mapping stops
at the first operator that cannot run on the Edge TPU; it and everything after it run on the CPU.

A model with uint8 input and output (core/int8_tflite.py, `io_dtype` "uint8") has a QUANTIZE at
each edge: uint8 -> int8 after the input and int8 -> uint8 before the output, both between 8-bit
quantized tensors. Coral's table lists Quantize without limitations, and the compiler maps these
(e.g. "QUANTIZE 2 Mapped to Edge TPU" in google-coral/edgetpu#169); a QUANTIZE from a float input
and a DEQUANTIZE to a float output (not in the table) stay on the CPU by the data-type rule.

The check reads the flatbuffer with the `tflite` schema package, runs without the compiler and
imports neither TensorFlow nor a TFLite runtime. It predicts; when `edgetpu_compiler` is installed
its log has the final word (some limits, e.g. "certain reshapes might not be mapped for large
tensor sizes", and operator-version support cannot be read from the file).
"""

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import tflite

from core import tflite_graph

DOCS_URL = "https://coral.ai/docs/edgetpu/models-intro/#supported-operations"

# Operator statuses, worded like the compiler's operation log where the compiler has a wording.
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
UNSUPPORTED_DATA_TYPE = "Operation is working on an unsupported data type"
UNSUPPORTED_RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
AFTER_UNSUPPORTED = "More than one subgraph is not supported"
MODEL_REJECTED = "Not mapped: the model as a whole is rejected (see model problems)"
LIMITATION = "Operation is otherwise supported, but not mapped: {}"

_TYPE_NAMES = {value: name for name, value in vars(tflite.TensorType).items()
               if not name.startswith("_")}
_EIGHT_BIT_TYPES = (tflite.TensorType.INT8, tflite.TensorType.UINT8)
_SOFTMAX_MAX_ELEMENTS = 16000
_BATCH_AXIS = 0


@dataclasses.dataclass(frozen=True)
class OperatorResult:
  """One operator of the main subgraph, in execution order, and whether it maps."""
  index: int
  name: str
  version: int
  status: str

  @property
  def on_edgetpu(self) -> bool:
    return self.status == MAPPED


@dataclasses.dataclass(frozen=True)
class CompatibilityReport:
  """What the Edge TPU compiler would map, predicted from the flatbuffer alone."""
  operators: List[OperatorResult]
  # Problems that make the compiler reject the whole model (dynamic shapes, batch other than 1).
  model_problems: List[str]

  @property
  def operations_total(self) -> int:
    return len(self.operators)

  @property
  def operations_on_edgetpu(self) -> int:
    return sum(op.on_edgetpu for op in self.operators)

  @property
  def operations_on_cpu(self) -> int:
    return self.operations_total - self.operations_on_edgetpu

  @property
  def fully_mapped(self) -> bool:
    return not self.model_problems and self.operations_on_edgetpu == self.operations_total > 0

  @property
  def first_unmapped(self) -> Optional[OperatorResult]:
    """The operator where mapping stops (None when everything maps or the model is rejected)."""
    if self.model_problems:
      return None
    return next((op for op in self.operators if not op.on_edgetpu), None)

  def summary(self) -> str:
    """One line: the counts, and why mapping stops when it does."""
    text = (f"{self.operations_on_edgetpu} of {self.operations_total} operations would run on the "
            "Edge TPU")
    if self.model_problems:
      return f"{text}; the model is rejected: {'; '.join(self.model_problems)}"
    first = self.first_unmapped
    if first is not None:
      return (f"{text}; mapping stops at operator #{first.index} {first.name} ({first.status}) "
              "and everything after it runs on the CPU")
    return text

  def format_log(self) -> str:
    """A table in the layout of the compiler's operation log (Operator, Count, Status)."""
    lines = [f"Edge TPU compatibility check (predicted from the flatbuffer; rules: {DOCS_URL})"]
    lines += [f"Model problem: {problem}" for problem in self.model_problems]
    lines += [f"Number of operations that will run on Edge TPU: {self.operations_on_edgetpu}",
              f"Number of operations that will run on CPU: {self.operations_on_cpu}", "",
              f"{'Operator':<30} {'Count':<10} Status", ""]
    groups: Dict[tuple, int] = {}
    for op in self.operators:
      groups[(op.name, op.status)] = groups.get((op.name, op.status), 0) + 1
    lines += [f"{name:<30} {count:<10} {status}" for (name, status), count in groups.items()]
    return "\n".join(lines)

  def to_dict(self) -> Dict[str, Any]:
    return {
        "source": "flatbuffer check (components/pusher/edgetpu_compatibility.py)",
        "rules": DOCS_URL,
        "fully_mapped": self.fully_mapped,
        "operations_total": self.operations_total,
        "operations_on_edgetpu": self.operations_on_edgetpu,
        "operations_on_cpu": self.operations_on_cpu,
        "model_problems": list(self.model_problems),
        "summary": self.summary(),
        "operators": [dataclasses.asdict(op) for op in self.operators],
    }


# The flatbuffer reader is the project's one (core/tflite_graph.py); the checks below take it.
_Graph = tflite_graph.TfliteGraph
_options = tflite_graph.builtin_options


def _tensor_indices(indices: np.ndarray) -> List[int]:
  return [int(i) for i in indices if i >= 0]  # -1 marks an omitted optional input.


def _no_fused_activation(options_class: type) -> Callable[[_Graph, tflite.Operator], Optional[str]]:
  def check(graph: _Graph, op: tflite.Operator) -> Optional[str]:
    del graph
    if _options(op, options_class).FusedActivationFunction() != tflite.ActivationFunctionType.NONE:
      return "no fused activation function allowed"
    return None
  return check


def _check_concatenation(graph: _Graph, op: tflite.Operator) -> Optional[str]:
  problem = _no_fused_activation(tflite.ConcatenationOptions)(graph, op)
  if problem:
    return problem
  inputs = _tensor_indices(op.InputsAsNumpy())
  constants = [i for i in inputs if graph.constant_bytes(i) is not None]
  if constants and (len(inputs) != 2 or any(graph.constant_bytes(i).strip(b"\0")
                                            for i in constants)):
    return "a constant input is only allowed as one all-zero tensor of exactly 2 inputs"
  return None


def _check_same_dilation(options_class: type) -> Callable[[_Graph, tflite.Operator], Optional[str]]:
  def check(graph: _Graph, op: tflite.Operator) -> Optional[str]:
    del graph
    options = _options(op, options_class)
    if options.DilationWFactor() != options.DilationHFactor():
      return "must use the same dilation in x and y"
    return None
  return check


def _check_fully_connected(graph: _Graph, op: tflite.Operator) -> Optional[str]:
  options = _options(op, tflite.FullyConnectedOptions)
  if options.WeightsFormat() != tflite.FullyConnectedOptionsWeightsFormat.DEFAULT:
    return "only the default weights format is supported"
  output = _tensor_indices(op.OutputsAsNumpy())[0]
  if sum(d > 1 for d in graph.shape(output)) > 1:
    return "output tensor must be one-dimensional"
  return None


def _check_softmax(graph: _Graph, op: tflite.Operator) -> Optional[str]:
  shape = graph.shape(_tensor_indices(op.InputsAsNumpy())[0])
  if sum(d > 1 for d in shape) > 1 or int(np.prod(shape)) > _SOFTMAX_MAX_ELEMENTS:
    return (f"input must be 1-D with at most {_SOFTMAX_MAX_ELEMENTS} elements "
            f"(input shape {shape})")
  return None


def _normalized_axes(axes: Sequence[int], rank: int) -> List[int]:
  return [int(a) % rank for a in axes] if rank else []


def _check_reduction(z_multiple_of_4: bool) -> Callable[[_Graph, tflite.Operator], Optional[str]]:
  def check(graph: _Graph, op: tflite.Operator) -> Optional[str]:
    data, axes_index = _tensor_indices(op.InputsAsNumpy())[:2]
    axes = graph.constant_ints(axes_index)
    shape = graph.shape(data)
    if axes is None:
      return "the reduction axes must be constant"
    normalized = _normalized_axes(axes, len(shape))
    if len(shape) == 4 and _BATCH_AXIS in normalized:
      return "cannot reduce along the batch dimension"
    if z_multiple_of_4 and len(shape) - 1 in normalized and shape[-1] % 4:
      return f"a z-reduction needs a z-dimension that is a multiple of 4 (got {shape[-1]})"
    return None
  return check


def _check_pad(graph: _Graph, op: tflite.Operator) -> Optional[str]:
  data, paddings_index = _tensor_indices(op.InputsAsNumpy())[:2]
  paddings = graph.constant_ints(paddings_index)
  if paddings is None:
    return "the paddings must be constant"
  if len(graph.shape(data)) == 4 and paddings.reshape(-1, 2)[_BATCH_AXIS].any():
    return "no padding in the batch dimension"
  return None


def _check_split(graph: _Graph, op: tflite.Operator) -> Optional[str]:
  axis_index, data = _tensor_indices(op.InputsAsNumpy())[:2]
  axis = graph.constant_ints(axis_index)
  shape = graph.shape(data)
  if axis is None or (len(shape) == 4 and _normalized_axes(axis, 4) == [_BATCH_AXIS]):
    return "no splitting in the batch dimension (and the axis must be constant)"
  return None


def _check_pack(graph: _Graph, op: tflite.Operator) -> Optional[str]:
  del graph
  if _options(op, tflite.PackOptions).Axis() == _BATCH_AXIS:
    return "no packing in the batch dimension"
  return None


def _check_strided_slice(graph: _Graph, op: tflite.Operator) -> Optional[str]:
  strides = graph.constant_ints(_tensor_indices(op.InputsAsNumpy())[3])
  options = _options(op, tflite.StridedSliceOptions)
  if strides is None or np.any(strides != 1) or options.EllipsisMask() or options.NewAxisMask():
    return "only all strides 1 with ellipsis_mask == 0 and new_axis_mask == 0"
  return None


def _check_prelu(graph: _Graph, op: tflite.Operator) -> Optional[str]:
  alpha = _tensor_indices(op.InputsAsNumpy())[1]
  if sum(d > 1 for d in graph.shape(alpha)[:-1]):
    return "alpha must be 1-dimensional (only the innermost dimension larger than 1)"
  return None


# Operator -> its documented limitation that can be read from the flatbuffer (None: no limitation
# beyond the general tensor rules). The table of Coral's page for compiler 16 / runtime 14.
SUPPORTED_OPERATORS: Dict[str, Optional[Callable[[_Graph, tflite.Operator], Optional[str]]]] = {
    "ADD": None,
    "AVERAGE_POOL_2D": _no_fused_activation(tflite.Pool2DOptions),
    "CONCATENATION": _check_concatenation,
    "CONV_2D": _check_same_dilation(tflite.Conv2DOptions),
    "DEPTHWISE_CONV_2D": _check_same_dilation(tflite.DepthwiseConv2DOptions),
    "EXPAND_DIMS": None,
    "FULLY_CONNECTED": _check_fully_connected,
    "L2_NORMALIZATION": None,
    "LOGISTIC": None,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": None,
    "MAXIMUM": None,
    "MAX_POOL_2D": _no_fused_activation(tflite.Pool2DOptions),
    "MEAN": _check_reduction(z_multiple_of_4=True),
    "MINIMUM": None,
    "MUL": None,
    "PACK": _check_pack,
    "PAD": _check_pad,
    "PRELU": _check_prelu,
    "QUANTIZE": None,  # E.g. a uint8 model's uint8 <-> int8 edges; float sides fail the type rule.
    "REDUCE_MAX": _check_reduction(z_multiple_of_4=False),
    "REDUCE_MIN": _check_reduction(z_multiple_of_4=False),
    "RELU": None,
    "RELU6": None,
    "RELU_N1_TO_1": None,
    "RESHAPE": None,
    "RESIZE_BILINEAR": None,
    "RESIZE_NEAREST_NEIGHBOR": None,
    "RSQRT": None,
    "SLICE": None,
    "SOFTMAX": _check_softmax,
    "SPACE_TO_DEPTH": None,
    "SPLIT": _check_split,
    "SQUARED_DIFFERENCE": None,
    "SQUEEZE": None,
    "STRIDED_SLICE": _check_strided_slice,
    "SUB": None,
    "SUM": _check_reduction(z_multiple_of_4=False),
    "TANH": None,
    "TRANSPOSE": None,
    "TRANSPOSE_CONV": None,
}


def _data_type_problem(graph: _Graph, tensors: List[int]) -> Optional[str]:
  """8-bit quantized tensors only; int32 only as constant data (biases, shapes, axes)."""
  for index in tensors:
    tensor_type = graph.tensor(index).Type()
    if tensor_type in _EIGHT_BIT_TYPES and graph.quantization(index) is not None:
      continue
    if tensor_type == tflite.TensorType.INT32 and graph.constant_bytes(index) is not None:
      continue
    return (f"tensor {graph.tensor_name(index)!r} is {_TYPE_NAMES.get(tensor_type, tensor_type)}"
            f"{'' if tensor_type not in _EIGHT_BIT_TYPES else ' without quantization parameters'}")
  return None


def _rank_problem(graph: _Graph, tensors: List[int]) -> Optional[str]:
  for index in tensors:
    if graph.constant_bytes(index) is None and any(d > 1 for d in graph.shape(index)[:-3]):
      return f"tensor {graph.tensor_name(index)!r} has shape {graph.shape(index)}"
  return None


def _operator_status(graph: _Graph, op: tflite.Operator, name: str) -> str:
  if name not in SUPPORTED_OPERATORS:
    return NOT_SUPPORTED
  tensors = _tensor_indices(op.InputsAsNumpy()) + _tensor_indices(op.OutputsAsNumpy())
  problem = _data_type_problem(graph, tensors)
  if problem:
    return f"{UNSUPPORTED_DATA_TYPE} ({problem})"
  problem = _rank_problem(graph, tensors)
  if problem:
    return f"{UNSUPPORTED_RANK} ({problem})"
  check = SUPPORTED_OPERATORS[name]
  problem = check(graph, op) if check else None
  return LIMITATION.format(problem) if problem else MAPPED


def _model_problems(graph: _Graph) -> List[str]:
  problems = []
  subgraph = graph.subgraph
  for index in _tensor_indices(subgraph.InputsAsNumpy()):
    shape = graph.shape_signature(index)
    if shape and shape[0] != 1:
      batch = "a dynamic batch" if shape[0] < 0 else f"batch {shape[0]}"
      problems.append(f"input {graph.tensor_name(index)!r} has {batch} (shape signature {shape}); "
                      "the Edge TPU needs batch 1")
  dynamic = [index for index in range(subgraph.TensorsLength())
             if any(d < 0 for d in graph.shape_signature(index))]
  if dynamic:
    problems.append(f"{len(dynamic)} tensors have dynamic shapes (e.g. "
                    f"{graph.tensor_name(dynamic[0])!r} {graph.shape_signature(dynamic[0])}); "
                    "the Edge TPU needs static shapes")
  if graph.model.SubgraphsLength() > 1:
    problems.append(f"the model has {graph.model.SubgraphsLength()} subgraphs; the Edge TPU "
                    "compiler maps only a model's single main graph")
  return problems


def check_edgetpu_compatibility(model_content: bytes) -> CompatibilityReport:
  """Predicts which operators of the model the Edge TPU compiler would map.

  Raises ValueError when the bytes are not a TFLite flatbuffer.
  """
  graph = _Graph(model_content)
  model_problems = _model_problems(graph)
  operators: List[OperatorResult] = []
  stopped = False
  for index in range(graph.subgraph.OperatorsLength()):
    op = graph.subgraph.Operators(index)
    name = graph.operator_name(op)
    status = _operator_status(graph, op, name)
    if model_problems:
      status = MODEL_REJECTED
    elif stopped and status == MAPPED:
      status = AFTER_UNSUPPORTED
    stopped = stopped or status != MAPPED
    operators.append(OperatorResult(index, name, graph.operator_version(op), status))
  return CompatibilityReport(operators, model_problems)


def describe_io(model_content: bytes) -> Dict[str, List[Dict[str, Any]]]:
  """Name, shape, type, scale and zero point of the model's inputs and outputs."""
  graph = _Graph(model_content)

  def describe(index: int) -> Dict[str, Any]:
    return {"name": graph.tensor_name(index), "shape": graph.shape_signature(index),
            "dtype": _TYPE_NAMES.get(graph.tensor(index).Type(), "UNKNOWN").lower(),
            **(graph.quantization(index) or {"scale": None, "zero_point": None})}

  return {"inputs": [describe(i) for i in _tensor_indices(graph.subgraph.InputsAsNumpy())],
          "outputs": [describe(i) for i in _tensor_indices(graph.subgraph.OutputsAsNumpy())]}
