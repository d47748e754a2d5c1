#!/usr/bin/env python3
"""A TEST STAND-IN for Coral's `edgetpu_compiler`, which cannot be installed on the test machines.

It accepts the real command line (`[-s] [-o DIR] [-t SECONDS] ... model.tflite`) and writes what
the real compiler writes -- DIR/NAME_edgetpu.tflite, DIR/NAME_edgetpu.log and a console summary in
the real layout -- but it compiles nothing: the "compiled" model is a byte copy of the input, the
operator table lists the input's real operators (read with the `tflite` package), and the memory
figures are the input's size. Its version line says "test stand-in", so anything it produced is
recorded as coming from this script, never as a real compilation.

Tests choose a behaviour with a first argument that the real compiler does not have
(`--standin=BEHAVIOUR`), from a small wrapper they put on PATH as `edgetpu_compiler`:
  success   every operator "Mapped to Edge TPU", exit 0
  partial   the last operator type "Operation not supported" (runs on the CPU), exit 0
  fail      "Compilation failed!", exit 1, no output files
  hang      never finishes (for the caller's timeout)
"""

import argparse
import collections
import os
import shutil
import sys
import time

import tflite

VERSION = "0.0.0 (test stand-in: copies the input, compiles nothing)"


def _format_size(num_bytes: int) -> str:
  for unit, size in (("MiB", 1024**2), ("KiB", 1024)):
    if num_bytes >= size:
      return f"{num_bytes / size:.2f}{unit}"
  return f"{num_bytes:.2f}B"


def _operator_counts(model_path: str) -> "collections.OrderedDict[str, int]":
  with open(model_path, "rb") as f:
    model = tflite.Model.GetRootAs(f.read(), 0)
  subgraph = model.Subgraphs(0)
  counts: collections.OrderedDict[str, int] = collections.OrderedDict()
  for i in range(subgraph.OperatorsLength()):
    code = model.OperatorCodes(subgraph.Operators(i).OpcodeIndex())
    name = tflite.opcode2name(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
    counts[name] = counts.get(name, 0) + 1
  return counts


def main() -> int:
  parser = argparse.ArgumentParser(prog="edgetpu_compiler")
  parser.add_argument("--standin", required=True,
                      choices=["success", "partial", "fail", "hang"])
  parser.add_argument("-o", "--out_dir", default=".")
  parser.add_argument("-s", "--show_operations", action="store_true")
  parser.add_argument("-t", "--timeout_sec", type=int, default=180)
  parser.add_argument("-m", "--min_runtime_version")
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
  shutil.copyfile(model_path, output_path)
  counts = _operator_counts(model_path)
  rows = [(op, count, "Mapped to Edge TPU") for op, count in counts.items()]
  if args.standin == "partial":
    op, count, _ = rows[-1]
    rows[-1] = (op, count, "Operation not supported")
  total = sum(counts.values())
  on_cpu = sum(count for _, count, status in rows if status != "Mapped to Edge TPU")
  table = [f"{'Operator':<30} {'Count':<10} Status", ""]
  table += [f"{op:<30} {count:<10} {status}" for op, count, status in rows]
  with open(log_path, "w") as f:
    f.write(f"Edge TPU Compiler version {VERSION}\nInput: {model_path}\nOutput: {output_path}\n\n")
    f.write("\n".join(table) + "\n")

  size = os.path.getsize(model_path)
  print(f"\nModel compiled successfully in 1 ms.\n\nInput model: {model_path}")
  print(f"Input size: {_format_size(size)}\nOutput model: {output_path}")
  print(f"Output size: {_format_size(size)}")
  print(f"On-chip memory used for caching model parameters: {_format_size(size)}")
  print(f"On-chip memory remaining for caching model parameters: "
        f"{_format_size(8 * 1024**2 - size)}")
  print("Off-chip memory used for streaming uncached model parameters: 0.00B")
  print("Number of Edge TPU subgraphs: 1")
  print(f"Total number of operations: {total}\nOperation log: {log_path}\n")
  if on_cpu:
    print("Model successfully compiled but not all operations are supported by the Edge TPU. A "
          "percentage of the model will instead run on the CPU, which is slower. If possible, "
          "consider updating your model to use only operations supported by the Edge TPU. For "
          "details, visit g.co/coral/model-reqs.")
    print(f"Number of operations that will run on Edge TPU: {total - on_cpu}")
    print(f"Number of operations that will run on CPU: {on_cpu}\n")
  if args.show_operations:
    print("\n".join(table))
  else:
    print("See the operation log file for individual operation details.")
  print("Compilation child process completed within timeout period.")
  print("Compilation succeeded! ")
  return 0


if __name__ == "__main__":
  sys.exit(main())
