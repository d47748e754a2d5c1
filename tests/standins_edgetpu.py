"""TEST STAND-INS for Coral's Edge TPU runtime and compiler output, which cannot exist here (no Edge
TPU, no `libedgetpu1-std`, no `edgetpu_compiler`).

`build_libedgetpu(directory, kind)` compiles, with the system's C compiler, a shared library named
`libedgetpu.so.1` that LiteRT's `load_delegate("libedgetpu.so.1")` finds through LD_LIBRARY_PATH,
and that fails the way broken installations do in the public reports:
  not_a_plugin   a library without LiteRT's external-delegate entry points
                 (`tflite_plugin_create_delegate`/`_destroy_delegate`, see
                 tensorflow/lite/delegates/external/external_delegate_interface.h and
                 ai_edge_litert/interpreter.py `Delegate`): LiteRT raises AttributeError, as with
                 a mismatched runtime (google-coral/tflite#63, google-coral/edgetpu#812);
  crashes        the entry points exist, and creating the delegate aborts the process (SIGABRT),
                 as a runtime built for another driver or device may.

`edgetpu_compiled(model_content)` rewrites a CPU int8 model so that every operator is the custom
operator `edgetpu-custom-op`, which is what edgetpu_compiler's output holds (one such operator runs
the whole compiled graph on the Edge TPU; google-coral/tflite#2): without the Edge TPU delegate
LiteRT cannot run it ("Encountered unresolved custom op: edgetpu-custom-op"). It uses
TensorFlow's own flatbuffer tools, so it is for tests/ only.
"""

import os
import shutil
import subprocess

import pytest

LIBRARY_NAME = "libedgetpu.so.1"
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
SOURCES = {
    "not_a_plugin": "int edgetpu_runtime_version(void) { return 0; }\n",
    "crashes": (
        "#include <stdlib.h>\n"
        "void* tflite_plugin_create_delegate(char** keys, char** values, size_t count,\n"
        "                                    void (*report_error)(const char*)) {\n"
        "  abort();\n"
        "}\n"
        "void tflite_plugin_destroy_delegate(void* delegate) {}\n"),
}


def build_libedgetpu(directory: str, kind: str) -> str:
  """DIRECTORY/libedgetpu.so.1 of the stand-in `kind`; returns DIRECTORY (for LD_LIBRARY_PATH)."""
  compiler = shutil.which("cc") or shutil.which("gcc")
  if compiler is None:
    pytest.skip("no C compiler to build the stand-in libedgetpu.so.1 with")
  os.makedirs(directory, exist_ok=True)
  source = os.path.join(directory, f"{kind}.c")
  with open(source, "w") as f:
    f.write(SOURCES[kind])
  subprocess.run([compiler, "-shared", "-fPIC", "-o", os.path.join(directory, LIBRARY_NAME),
                  source], check=True)
  return directory


def edgetpu_compiled(model_content: bytes) -> bytes:
  """`model_content` with every operator turned into edgetpu-custom-op (see the module doc)."""
  from tensorflow.lite.python import schema_py_generated as schema
  from tensorflow.lite.tools import flatbuffer_utils
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_content))
  for code in model.operatorCodes:
    code.builtinCode = schema.BuiltinOperator.CUSTOM
    code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = EDGETPU_CUSTOM_OP
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
