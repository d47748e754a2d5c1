"""Edge TPU runtime versions, and the version a compiled model needs, read from the model itself.

edgetpu_compiler replaces the operators it maps with `edgetpu-custom-op` operators. Each one's
custom options are a FlexBuffer map whose key "4" holds the serialized executable package
(libedgetpu tflite/custom_op_data.cc), a FlatBuffer with the file identifier "DWN1" whose first
field is `min_runtime_version` (libedgetpu executable/executable.fbs, table Package). When a model
is loaded, libedgetpu refuses a package whose version is newer than its own
(driver/package_registry.cc: "Package requires runtime version (N), which is newer than this runtime
version (M)"). The compiler sets the version from its `-m` / `--min_runtime_version` flag, or to its
own default (14 for edgetpu_compiler 16, https://coral.ai/docs/edgetpu/compiler/); its console log
does not print it, so the pushed model is read here instead.

The reader was checked on Coral's own compiled models (google-coral/test_data at 104342d, not kept
here): keras_lstm_mnist_ptq_edgetpu.tflite and mobilenet_v1_0.25_128_quant_edgetpu.tflite need
runtime 12, tools/split_concat_edgetpu.tflite 13; their custom options have exactly the keys above,
"4" a FlexBuffer string. No TensorFlow: the flatbuffer is read with the `tflite` schema package and
`flatbuffers`.
"""

from typing import List, Optional

import flatbuffers
from flatbuffers import flexbuffers
import tflite

from core import contract

# libedgetpu api/runtime_version.h.
MIN_VALID_RUNTIME_VERSION = 10  # kMinValidRuntimeVersion: older packages are not valid.
INT8_HOST_IO_RUNTIME_VERSION = 12  # kWithInt8HostDataTypeSupport: int8 model inputs and outputs.
# kCurrent: the newest, libedgetpu's "grouper" release; edgetpu_compiler 16 targets it by default.
CURRENT_RUNTIME_VERSION = 14

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
PACKAGE_IDENTIFIER = b"DWN1"
EXECUTABLE_KEY = "4"  # custom_op_data.cc kKeyExecutable.
_FIRST_FIELD = 4  # The vtable offset of a table's first field (Package.min_runtime_version).


class EdgeTpuPackageError(ValueError):
  """An edgetpu-custom-op whose options do not hold a readable Edge TPU package."""


def runtime_version_problem(min_runtime_version: int, io_dtypes: List[str]) -> Optional[str]:
  """Why a model with these input/output types cannot target `min_runtime_version`, or None.

  The rules of libedgetpu's api/runtime_version.h: versions below 10 are not valid packages, and
  int8 host inputs and outputs need runtime 12 or later.
  """
  if min_runtime_version < MIN_VALID_RUNTIME_VERSION:
    return (f"Edge TPU runtime version {min_runtime_version} is below "
            f"{MIN_VALID_RUNTIME_VERSION}, the oldest version libedgetpu accepts")
  if contract.INT8_IO in io_dtypes and min_runtime_version < INT8_HOST_IO_RUNTIME_VERSION:
    return (f"int8 model inputs and outputs need Edge TPU runtime "
            f"{INT8_HOST_IO_RUNTIME_VERSION} or later, not {min_runtime_version} (use uint8 "
            "inputs and outputs for older runtimes)")
  return None


def package_runtime_version(package: bytes) -> int:
  """`min_runtime_version` of one serialized DWN1 package (0, the FlatBuffer default, if unset).

  Raises:
    EdgeTpuPackageError: the bytes are not a DWN1 package.
  """
  buffer = bytearray(package)
  if (len(buffer) < 8 or
      flatbuffers.util.GetBufferIdentifier(buffer, 0) != PACKAGE_IDENTIFIER):
    raise EdgeTpuPackageError(f"the executable is not an Edge TPU package (no "
                              f"{PACKAGE_IDENTIFIER.decode()} file identifier)")
  root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buffer, 0)
  table = flatbuffers.table.Table(buffer, root)
  offset = table.Offset(_FIRST_FIELD)
  return table.Get(flatbuffers.number_types.Int32Flags, table.Pos + offset) if offset else 0


def required_runtime_version(model_content: bytes) -> Optional[int]:
  """The Edge TPU runtime version a compiled model needs: the highest `min_runtime_version` of its
  edgetpu-custom-op packages; None when it has no such operator (not compiled for the Edge TPU).

  Raises:
    EdgeTpuPackageError: an edgetpu-custom-op without a readable package.
  """
  model = tflite.Model.GetRootAs(model_content, 0)
  versions = []
  for subgraph_index in range(model.SubgraphsLength()):
    subgraph = model.Subgraphs(subgraph_index)
    for op_index in range(subgraph.OperatorsLength()):
      op = subgraph.Operators(op_index)
      code = model.OperatorCodes(op.OpcodeIndex())
      if code.CustomCode() != EDGETPU_CUSTOM_OP.encode():
        continue
      try:
        if not op.CustomOptionsLength():
          raise KeyError("no custom options")
        executable = flexbuffers.GetRoot(op.CustomOptionsAsNumpy().tobytes()).AsMap[
            EXECUTABLE_KEY]
        package = executable.AsStringBytes if executable.IsString else executable.AsBlob
      except (KeyError, TypeError, IndexError) as e:
        raise EdgeTpuPackageError(f"operator #{op_index} ({EDGETPU_CUSTOM_OP}) has no executable "
                                  f"under key {EXECUTABLE_KEY!r} in its options: {e}") from e
      versions.append(package_runtime_version(package))
  return max(versions) if versions else None
