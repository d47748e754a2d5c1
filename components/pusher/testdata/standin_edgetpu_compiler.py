#!/usr/bin/env python3
"""A TEST STAND-IN for Coral's `edgetpu_compiler`, which cannot be installed on the test machines.

It accepts the real command line (`[-s] [-o DIR] [-m VERSION] [-t SECONDS] ... model.tflite`) and
writes what the real compiler writes -- DIR/NAME_edgetpu.tflite, DIR/NAME_edgetpu.log and a console
summary -- but it compiles nothing. Its version line says "test stand-in", so anything it produced
is recorded as coming from this script, never as a real compilation.

What it imitates, and from where:
  * The console summary and operation table: the layout of edgetpu_compiler 15 and 16 in Coral's
    documentation (https://coral.ai/docs/edgetpu/compiler/) and public logs, e.g.
    google-coral/edgetpu#427 (off-chip memory), #324 (several Edge TPU subgraphs with -a), #60
    (operators on the CPU, one operator on several rows by status). The figures are made up: the
    memory is the input's size, the operators are the input's real operators (read with the
    `tflite` package).
  * The "compiled" model: the input with each run of mapped operators replaced by one
    `edgetpu-custom-op` operator, as in the real output (google-coral/tflite#13); its custom
    options are the FlexBuffer map of libedgetpu's tflite/custom_op_data.cc, whose executable
    (key "4") is a DWN1 package (executable/executable.fbs) carrying only `min_runtime_version` and
    `compiler_version`, no Edge TPU instructions. The version is `-m`, else 14, edgetpu_compiler
    16's default. Like a real compiled model it does not run without the Edge TPU delegate.

Tests choose a behaviour with a first argument that the real compiler does not have
(`--standin=BEHAVIOUR`), from a small wrapper they put on PATH as `edgetpu_compiler`:
  success    every operator "Mapped to Edge TPU", exit 0
  partial    the last operator "Operation not supported" (runs on the CPU), exit 0
  offchip    every operator mapped, but half the parameters streamed from off-chip memory
  subgraphs  the middle operator on the CPU and two Edge TPU subgraphs around it (as with -a)
  fail       "Compilation failed!", exit 1, no output files
  hang       never finishes (for the caller's timeout)
"""

import argparse
import os
import sys
import time
from typing import List, Tuple

from ai_edge_litert import schema_py_generated as schema
import flatbuffers
from flatbuffers import flexbuffers

VERSION = "0.0.0 (test stand-in: writes the model's operators as edgetpu-custom-ops, no code)"
COMPILER_16_DEFAULT_RUNTIME = 14
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
ON_CHIP_BYTES = 8 * 1024**2  # The Edge TPU's parameter cache.


def _format_size(num_bytes: int) -> str:
  for unit, size in (("MiB", 1024**2), ("KiB", 1024)):
    if num_bytes >= size:
      return f"{num_bytes / size:.2f}{unit}"
  return f"{num_bytes:.2f}B"


def _operator_names(model: schema.ModelT) -> List[str]:
  names = {value: name for name, value in vars(schema.BuiltinOperator).items()
           if not name.startswith("_")}
  return [names[max(model.operatorCodes[op.opcodeIndex].builtinCode,
                    model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)]
          for op in model.subgraphs[0].operators]


def _statuses(behaviour: str, count: int) -> List[str]:
  statuses = [MAPPED] * count
  if behaviour == "partial":
    statuses[-1] = NOT_SUPPORTED
  elif behaviour == "subgraphs":
    statuses[count // 2] = NOT_SUPPORTED
  return statuses


def _package(min_runtime_version: int) -> bytes:
  """A DWN1 Package with min_runtime_version (field 0) and compiler_version (field 4) only."""
  builder = flatbuffers.Builder(64)
  compiler_version = builder.CreateString(VERSION)
  builder.StartObject(5)
  builder.PrependInt32Slot(0, min_runtime_version, 0)
  builder.PrependUOffsetTRelativeSlot(4, compiler_version, 0)
  builder.Finish(builder.EndObject(), file_identifier=b"DWN1")
  return bytes(builder.Output())


def _custom_options(min_runtime_version: int) -> bytes:
  """custom_op_data.cc's map: "1" version, "4" executable, "5" preference, "6" chips, "7" more."""
  options = flexbuffers.Builder()
  with options.Map():
    options.Int("1", 1)
    # The package is a flexbuffer string, as the C++ builder writes it; this small package is ASCII
    # (and the Python builder only writes text strings), so it goes through unchanged.
    options.String("4", _package(min_runtime_version).decode("ascii"))
    options.Int("5", 0)
    with options.Vector("6"):
      options.Int(0)
    with options.Vector("7"):
      pass
  return bytes(options.Finish())


def _edgetpu_op(model: schema.ModelT, segment: List[schema.OperatorT],
                later: List[schema.OperatorT], options: bytes) -> schema.OperatorT:
  """One edgetpu-custom-op standing for `segment`: its inputs come from outside the segment (not
  constants), its outputs are what later operators or the graph's outputs read."""
  subgraph = model.subgraphs[0]
  produced = [t for op in segment for t in op.outputs]
  read_later = {t for op in later for t in op.inputs} | set(subgraph.outputs)
  inputs: List[int] = []
  for op in segment:
    for t in op.inputs:
      if t < 0 or t in produced or t in inputs:
        continue
      if model.buffers[subgraph.tensors[t].buffer].data is None:  # Not a constant.
        inputs.append(t)
  code = schema.OperatorCodeT()
  code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
  code.customCode, code.version = "edgetpu-custom-op", 1
  model.operatorCodes.append(code)
  op = schema.OperatorT()
  op.opcodeIndex = len(model.operatorCodes) - 1
  op.inputs, op.outputs = inputs, [t for t in produced if t in read_later]
  op.customOptions = list(options)
  op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
  return op


def _compiled_model(content: bytes, statuses: List[str], min_runtime_version: int) -> bytes:
  """The input with every run of mapped operators replaced by one edgetpu-custom-op."""
  model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
  operators = model.subgraphs[0].operators
  options = _custom_options(min_runtime_version)
  compiled: List[schema.OperatorT] = []
  segment: List[schema.OperatorT] = []
  for index, (op, status) in enumerate(zip(operators, statuses, strict=True)):
    if status == MAPPED:
      segment.append(op)
      if index + 1 < len(operators) and statuses[index + 1] == MAPPED:
        continue
      compiled.append(_edgetpu_op(model, segment, operators[index + 1:], options))
      segment = []
    else:
      compiled.append(op)
  model.subgraphs[0].operators = compiled
  builder = flatbuffers.Builder(len(content) + 1024)
  builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
  return bytes(builder.Output())


def _table(names: List[str], statuses: List[str]) -> List[str]:
  """Operator, Count, Status rows: one row per operator and status, in order of appearance."""
  rows: List[Tuple[str, str]] = []
  counts = {}
  for name, status in zip(names, statuses, strict=True):
    if (name, status) not in counts:
      rows.append((name, status))
    counts[(name, status)] = counts.get((name, status), 0) + 1
  return [f"{'Operator':<30} {'Count':<10} Status", ""] + [
      f"{name:<30} {counts[(name, status)]:<10} {status}" for name, status in rows]


def _print_summary(args, size: int, statuses: List[str], output_path: str, log_path: str,
                   table: List[str]) -> None:
  on_chip = size // 2 if args.standin == "offchip" else size
  on_cpu = sum(status != MAPPED for status in statuses)
  print(f"\nModel compiled successfully in 1 ms.\n\nInput model: {args.models[0]}")
  print(f"Input size: {_format_size(size)}\nOutput model: {output_path}")
  print(f"Output size: {_format_size(os.path.getsize(output_path))}")
  print(f"On-chip memory used for caching model parameters: {_format_size(on_chip)}")
  print("On-chip memory remaining for caching model parameters: "
        f"{_format_size(0 if args.standin == 'offchip' else ON_CHIP_BYTES - size)}")
  print("Off-chip memory used for streaming uncached model parameters: "
        f"{_format_size(size - on_chip)}")
  print(f"Number of Edge TPU subgraphs: {2 if args.standin == 'subgraphs' else 1}")
  print(f"Total number of operations: {len(statuses)}\nOperation log: {log_path}\n")
  if on_cpu:
    print("Model successfully compiled but not all operations are supported by the Edge TPU. A "
          "percentage of the model will instead run on the CPU, which is slower. If possible, "
          "consider updating your model to use only operations supported by the Edge TPU. For "
          "details, visit g.co/coral/model-reqs.")
    print(f"Number of operations that will run on Edge TPU: {len(statuses) - on_cpu}")
    print(f"Number of operations that will run on CPU: {on_cpu}\n")
  print("\n".join(table) if args.show_operations else
        "See the operation log file for individual operation details.")


def main() -> int:
  parser = argparse.ArgumentParser(prog="edgetpu_compiler")
  parser.add_argument("--standin", required=True,
                      choices=["success", "partial", "offchip", "subgraphs", "fail", "hang"])
  parser.add_argument("-o", "--out_dir", default=".")
  parser.add_argument("-s", "--show_operations", action="store_true")
  parser.add_argument("-t", "--timeout_sec", type=int, default=180)
  parser.add_argument("-m", "--min_runtime_version", type=int,
                      default=COMPILER_16_DEFAULT_RUNTIME)
  parser.add_argument("-a", "--enable_multiple_subgraphs", action="store_true")
  parser.add_argument("-n", "--num_segments", type=int)
  parser.add_argument("-i", "--intermediate_tensors")
  parser.add_argument("models", nargs="+")
  args = parser.parse_args()

  print(f"Edge TPU Compiler version {VERSION}")
  print(f"Started a compilation timeout timer of {args.timeout_sec} seconds.")
  sys.stdout.flush()
  if args.standin == "hang":
    time.sleep(3600)
  if args.standin == "fail":
    print("ERROR: Didn't find op for builtin opcode (test stand-in failure)")
    print("\nCompilation failed: Model failed in Tflite interpreter. Please ensure model can be "
          "loaded/run in Tflite interpreter.")
    print("Compilation child process completed within timeout period.")
    print("Compilation failed! ")
    return 1

  model_path = args.models[0]
  name = os.path.splitext(os.path.basename(model_path))[0]
  output_path = os.path.join(args.out_dir, f"{name}_edgetpu.tflite")
  log_path = os.path.join(args.out_dir, f"{name}_edgetpu.log")
  with open(model_path, "rb") as f:
    content = f.read()
  names = _operator_names(schema.ModelT.InitFromPackedBuf(bytearray(content), 0))
  statuses = _statuses(args.standin, len(names))
  with open(output_path, "wb") as f:
    f.write(_compiled_model(content, statuses, args.min_runtime_version))
  table = _table(names, statuses)
  with open(log_path, "w") as f:
    f.write(f"Edge TPU Compiler version {VERSION}\nInput: {model_path}\nOutput: {output_path}\n\n")
    f.write("\n".join(table) + "\n")
  _print_summary(args, len(content), statuses, output_path, log_path, table)
  print("Compilation child process completed within timeout period.")
  print("Compilation succeeded! ")
  return 0


if __name__ == "__main__":
  sys.exit(main())
