"""What the hand-built QAT and tfmot's QAT do, read from the training graphs they build.

Each trainer's own model builder (`trainer_module.model.build`, `keras_baseline.build_model(...,
quantize=True)`) makes the network of a route; its training forward pass (training=True, fake
quant on) is traced with tf.function, and every FakeQuant op of the graph is described: which
tensor it quantizes (the model input, conv or dense weights, a ReLU output, the logits), per
channel or per tensor, narrow range or not, and where its range comes from: fixed in the op,
recomputed from the tensor at every call, or stored in variables, with how the training graph
updates them (last value, running min/max, or exponential moving average and its decay, read from
the graph's constants) and their initial value. Nothing here is written by hand about either
method: the comparison's Markdown states what these functions find.
"""

import collections
import dataclasses
from typing import Any, Callable, Dict, Iterator, List, Set

import numpy as np
import tensorflow as tf

from core import contract
from trainer_module import hparams as hparams_lib
from trainer_module import keras_baseline
from trainer_module import model as model_lib

FAKE_QUANT_OPS = ("FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars",
                  "FakeQuantWithMinMaxVarsPerChannel")
_ASSIGN_OPS = ("AssignVariableOp", "AssignSubVariableOp", "AssignAddVariableOp")
_PASS_THROUGH = ("Identity",)
# How far back from a range update the search for the variable's own value and the decay goes
# (an EMA update is a handful of ops: read, multiply, subtract, add).
_UPDATE_DEPTH = 8
# Roles of the quantized tensors, in the table's order.
INPUT, CONV_WEIGHTS, DENSE_WEIGHTS, RELU_OUTPUT, LOGITS = (
    "model input", "conv weights", "dense weights", "ReLU outputs", "logits (before softmax)")
ROLES = (INPUT, CONV_WEIGHTS, DENSE_WEIGHTS, RELU_OUTPUT, LOGITS)


@dataclasses.dataclass(frozen=True)
class FakeQuant:
  """One FakeQuant op of a training graph, described."""
  role: str  # One of ROLES, or "output of <op type>".
  op_type: str
  per_channel: bool
  narrow_range: bool
  num_bits: int
  range_source: str  # Where min/max come from and how training updates them.

  def describe(self) -> str:
    return (f"{'per channel' if self.per_channel else 'per tensor'}, "
            f"{'narrow range [-127, 127]' if self.narrow_range else 'full range [-128, 127]'}, "
            f"{self.num_bits} bits; range {self.range_source}")


def _producer(tensor: tf.Tensor) -> tf.Operation:
  op = tensor.op
  while op.type in _PASS_THROUGH:
    op = op.inputs[0].op
  return op


def _ancestors(tensor: tf.Tensor, depth: int) -> Iterator[tf.Operation]:
  """The ops `tensor` depends on, up to `depth` ops back (breadth first, each once)."""
  seen: Set[str] = set()
  frontier = [tensor.op]
  for _ in range(depth):
    following = []
    for op in frontier:
      if op.name in seen:
        continue
      seen.add(op.name)
      yield op
      following += [t.op for t in op.inputs]
    frontier = following


def _scalar_constants(ops: List[tf.Operation]) -> List[float]:
  values = []
  for op in ops:
    if op.type == "Const" and op.outputs[0].dtype.is_floating:
      value = tf.get_static_value(op.outputs[0])
      if value is not None and np.ndim(value) == 0:
        values.append(float(value))
  return values


def _role(op: tf.Operation, graph_inputs: Set[str]) -> str:
  source = _producer(op.inputs[0])
  if source.type == "Placeholder" and op.inputs[0].name in graph_inputs | {
      t.name for t in source.outputs}:
    return INPUT
  if source.type == "ReadVariableOp":
    consumers = {c.type for c in op.outputs[0].consumers()}
    return CONV_WEIGHTS if consumers & {"Conv2D", "DepthwiseConv2dNative"} else DENSE_WEIGHTS
  if source.type == "Relu":
    return RELU_OUTPUT
  if source.type in ("BiasAdd", "AddV2", "Add", "MatMul"):
    return LOGITS
  return f"output of {source.type}"


def _is_first_update_switch(op: tf.Operation) -> bool:
  """A select between the decay and 0 (decay 0: the first update takes the batch as is)."""
  return op.type in ("Select", "SelectV2") and 0.0 in _scalar_constants(
      [t.op for t in op.inputs])


def _stored_update(graph: tf.Graph, handle: str) -> str:
  """How the training graph updates the range variable whose resource tensor is `handle`."""
  writes = [op for op in graph.get_operations()
            if op.type in _ASSIGN_OPS and op.inputs[0].name == handle]
  if not writes:
    return "not updated while training"
  write = writes[0]
  ancestors = list(_ancestors(write.inputs[1], _UPDATE_DEPTH))
  constants = _scalar_constants(ancestors)
  if write.type == "AssignSubVariableOp":  # v -= (v - x) * (1 - decay): an EMA.
    rate = next((c for c in constants if 0.0 < c < 0.5), None)
    return ("exponential moving average of the batch min/max" +
            (f", decay {1 - rate:.4g}" if rate is not None else ""))
  if not any(op.type == "ReadVariableOp" and op.inputs[0].name == handle for op in ancestors):
    return "set to the tensor's min/max at every training step"
  decays = [c for c in constants if 0.5 < c < 1.0]
  if decays:
    first = (" (the first update takes the batch's min/max as is)"
             if any(_is_first_update_switch(op) for op in ancestors) else "")
    return f"exponential moving average of the batch min/max, decay {max(decays):.4g}{first}"
  return "running min/max over every batch seen"


def _range_source(op: tf.Operation, graph: tf.Graph,
                  initial_values: Dict[str, np.ndarray]) -> str:
  if op.type == "FakeQuantWithMinMaxArgs":
    return f"fixed in the op: [{op.get_attr('min'):g}, {op.get_attr('max'):g}]"
  sources = [_producer(t) for t in op.inputs[1:3]]
  if any(source.type != "ReadVariableOp" for source in sources):
    how = ("max abs(x), symmetric: min = -max" if sources[0].type == "Neg" and any(
        a.type == "Abs" for a in _ancestors(op.inputs[2], _UPDATE_DEPTH)) else "computed")
    return f"recomputed from the tensor at every call ({how}), not stored"
  handles = [source.inputs[0].name for source in sources]
  start = ""
  if all(handle in initial_values for handle in handles):
    low, high = (np.unique(initial_values[handle]) for handle in handles)
    if len(low) == len(high) == 1:
      start = f", from [{low[0]:g}, {high[0]:g}]"
  return f"stored, {_stored_update(graph, handles[0])}{start}"


def describe_graph(graph: tf.Graph, initial_values: Dict[str, np.ndarray]) -> List[FakeQuant]:
  """Every FakeQuant op of a traced training graph, in graph order.

  `initial_values` maps a captured resource tensor's name to the variable's value before training.
  """
  inputs = {t.name for t in graph.inputs}
  return [FakeQuant(_role(op, inputs), op.type, op.type.endswith("PerChannel"),
                    bool(op.get_attr("narrow_range")), int(op.get_attr("num_bits")),
                    _range_source(op, graph, initial_values))
          for op in graph.get_operations() if op.type in FAKE_QUANT_OPS]


def _trace(forward: Callable[[tf.Tensor], tf.Tensor], variables) -> List[FakeQuant]:
  """Traces `forward` on float32 images [None, 28, 28, 1] and describes its FakeQuant ops."""
  function = tf.function(forward, autograph=False).get_concrete_function(
      tf.TensorSpec([None, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1], tf.float32))
  graph = function.graph
  by_handle = {id(variable.handle): variable for variable in variables}
  initial = {internal.name: by_handle[id(external)].numpy()
             for external, internal in graph.captures if id(external) in by_handle}
  return describe_graph(graph, initial)


def hand_built_fake_quants(config: Dict[str, Any]) -> List[FakeQuant]:
  """The hand-built trainer's network for a route's custom_config, as it trains."""
  network = model_lib.build(hparams_lib.HParams.from_config(config))
  seed = tf.constant([0, 0], tf.int64)
  return _trace(lambda images: network(images, quantize=True, training=True, dropout_seed=seed),
                network.variables)


def tfmot_fake_quants(config: Dict[str, Any]) -> List[FakeQuant]:
  """The Keras baseline's network through tfmot's quantize_model, as it trains."""
  hp, _, initializer = keras_baseline.parse_config(config)
  model = keras_baseline.build_model(hp, quantize=True, initializer=initializer)
  return _trace(lambda images: model(images, training=True), model.variables)


def by_role(fake_quants: List[FakeQuant]) -> Dict[str, str]:
  """{role: "n x OpType: description"} with one line per distinct description of that role."""
  groups: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for fake_quant in fake_quants:
    groups[fake_quant.role][(fake_quant.op_type, fake_quant.describe())] += 1
  return {role: "; ".join(f"{count} x `{op_type}`: {description}"
                          for (op_type, description), count in counter.items())
          for role, counter in groups.items()}
