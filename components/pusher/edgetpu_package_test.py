"""edgetpu_package on flatbuffers built here in the layouts of libedgetpu's schemas.

A compiled model from the stand-in compiler (the same layout, end to end) is read in
edgetpu_compiler_test.py and executor_test.py.
"""

from typing import Optional

from ai_edge_litert import schema_py_generated as schema
import flatbuffers
import pytest

from components.pusher import edgetpu_package
from components.pusher.testdata import standin_edgetpu_compiler as standin


def _model(custom_options: Optional[bytes], custom_code: str = "edgetpu-custom-op") -> bytes:
  """A TFLite model whose one operator is a custom operator with these options."""
  tensor = schema.TensorT()
  tensor.shape, tensor.type, tensor.buffer, tensor.name = [1, 4], schema.TensorType.UINT8, 0, "x"
  code = schema.OperatorCodeT()
  code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
  code.customCode = custom_code
  op = schema.OperatorT()
  op.opcodeIndex, op.inputs, op.outputs = 0, [0], [0]
  if custom_options is not None:
    op.customOptions = list(custom_options)
  subgraph = schema.SubGraphT()
  subgraph.tensors, subgraph.inputs, subgraph.outputs, subgraph.operators = [tensor], [0], [0], [op]
  model = schema.ModelT()
  model.version, model.operatorCodes, model.subgraphs = 3, [code], [subgraph]
  model.buffers = [schema.BufferT()]
  builder = flatbuffers.Builder(256)
  builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
  return bytes(builder.Output())


def test_reads_min_runtime_version_from_the_package():
  assert edgetpu_package.package_runtime_version(standin._package(12)) == 12
  assert edgetpu_package.required_runtime_version(_model(standin._custom_options(13))) == 13


def test_a_package_without_the_field_has_the_flatbuffer_default():
  builder = flatbuffers.Builder(16)
  builder.StartObject(5)
  builder.Finish(builder.EndObject(), file_identifier=b"DWN1")
  assert edgetpu_package.package_runtime_version(bytes(builder.Output())) == 0


def test_a_model_without_edgetpu_operators_needs_no_runtime():
  assert edgetpu_package.required_runtime_version(_model(b"", custom_code="MyOp")) is None


@pytest.mark.parametrize("options, match", [
    (None, "has no executable under key '4'"),
    (standin._custom_options(13).replace(b"DWN1", b"XXXX"), "not an Edge TPU package"),
])
def test_unreadable_packages_are_errors(options, match):
  with pytest.raises(edgetpu_package.EdgeTpuPackageError, match=match):
    edgetpu_package.required_runtime_version(_model(options))


@pytest.mark.parametrize("version, io_dtypes, problem", [
    (13, ["uint8", "uint8"], None),
    (10, ["uint8", "uint8"], None),
    (12, ["int8", "int8"], None),
    (11, ["int8", "int8"], "int8 model inputs and outputs need Edge TPU runtime 12 or later"),
    (11, ["uint8", "int8"], "int8 model inputs and outputs need Edge TPU runtime 12 or later"),
    (9, ["uint8", "uint8"], "below 10, the oldest version libedgetpu accepts"),
])
def test_runtime_version_rules(version, io_dtypes, problem):
  found = edgetpu_package.runtime_version_problem(version, io_dtypes)
  assert found == problem if problem is None else problem in found
