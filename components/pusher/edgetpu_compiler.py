"""Runs Coral's `edgetpu_compiler` on the int8 model and reads its log and output.

`edgetpu_compiler -s -o OUT_DIR [-m VERSION] [flags] NAME.tflite` writes
OUT_DIR/NAME_edgetpu.tflite and the operation log OUT_DIR/NAME_edgetpu.log, and prints a summary
such as

  Edge TPU Compiler version 16.0.384591198
  ...
  On-chip memory used for caching model parameters: 4.21MiB
  On-chip memory remaining for caching model parameters: 3.29MiB
  Off-chip memory used for streaming uncached model parameters: 0.00B
  Number of Edge TPU subgraphs: 1
  Total number of operations: 267
  Operation log: NAME_edgetpu.log
  ...
  Number of operations that will run on Edge TPU: 264
  Number of operations that will run on CPU: 3

  Operator                       Count      Status
  ADD                            42         Mapped to Edge TPU
  ...

(the two "Number of operations" lines appear only when some operations stay on the CPU). Off-chip
parameter memory and more than one Edge TPU subgraph are what make a compiled model slow
(google-coral/edgetpu#427, #572). `-m` (`--min_runtime_version`) sets the oldest Edge TPU runtime
the compiled model must run on; the log does not print it, so the version the compiled model needs
is read from the model itself (edgetpu_package.py). The compiler runs on local files in a scratch
directory; the caller writes the results wherever the push goes (fileio).
"""

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import logging

from components.pusher import edgetpu_compatibility
from components.pusher import edgetpu_package

COMPILER_NAME = "edgetpu_compiler"
NOT_INSTALLED_MESSAGE = "not compiled: edgetpu_compiler not installed"
# The compiler's flag for the oldest Edge TPU runtime the output must run on, short and long.
MIN_RUNTIME_VERSION_FLAGS = ("-m", "--min_runtime_version")

_MODEL_NAME = "model"
_BYTE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3,
               "KB": 1000, "MB": 1000**2, "GB": 1000**3}
_SIZE = r"([\d.]+)\s*([KMG]i?B|B)"
_OPERATOR_ROW = re.compile(r"^([A-Z][A-Z0-9_]*(?: \([^)]*\))?)\s+(\d+)\s+(\S.*?)\s*$")


class EdgeTpuCompilerError(RuntimeError):
  """The compiler is misconfigured, failed, timed out or produced no usable output."""


@dataclasses.dataclass(frozen=True)
class CompilerReport:
  """What the compiler reported about one compilation."""
  compiler_path: str
  command: List[str]
  compiler_version: Optional[str]
  operations_total: int
  operations_on_edgetpu: int
  edgetpu_subgraphs: Optional[int]
  on_chip_memory_used_bytes: Optional[int]
  on_chip_memory_remaining_bytes: Optional[int]
  off_chip_memory_used_bytes: Optional[int]
  # (operator, count, status) rows of the operation table.
  operators: List[Tuple[str, int, str]]
  seconds: float
  # The -m passed (None: the compiler's default), and the Edge TPU runtime version the compiled
  # model needs, read from its edgetpu-custom-op packages (None: no operator was compiled).
  requested_min_runtime_version: Optional[int] = None
  required_runtime_version: Optional[int] = None

  @property
  def operations_on_cpu(self) -> int:
    return self.operations_total - self.operations_on_edgetpu

  @property
  def fully_mapped(self) -> bool:
    return self.operations_total > 0 and self.operations_on_edgetpu == self.operations_total

  def slowdowns(self) -> List[str]:
    """What makes the compiled model slow by the log: off-chip parameters, a split graph."""
    problems = []
    if self.off_chip_memory_used_bytes:
      problems.append(f"{format_bytes(self.off_chip_memory_used_bytes)} of parameters streamed "
                      "from off-chip memory")
    if self.edgetpu_subgraphs is not None and self.edgetpu_subgraphs > 1:
      problems.append(f"{self.edgetpu_subgraphs} Edge TPU subgraphs")
    return problems

  def summary(self) -> str:
    """One line: mapping, runtime needed, memory and subgraphs, and which compiler said so."""
    parts = [f"{self.operations_on_edgetpu} of {self.operations_total} operations run on the Edge "
             "TPU"]
    if self.required_runtime_version is not None:
      parts.append(f"needs Edge TPU runtime {self.required_runtime_version} or later")
    if self.on_chip_memory_used_bytes is not None:
      parts.append(f"{format_bytes(self.on_chip_memory_used_bytes)} on-chip, "
                   f"{format_bytes(self.off_chip_memory_used_bytes or 0)} off-chip parameters")
    if self.edgetpu_subgraphs is not None:
      parts.append(f"{self.edgetpu_subgraphs} Edge TPU subgraph"
                   f"{'' if self.edgetpu_subgraphs == 1 else 's'}")
    return f"{', '.join(parts)} ({self.compiler_path}, version {self.compiler_version})"

  def to_dict(self) -> Dict[str, Any]:
    return {**dataclasses.asdict(self), "operations_on_cpu": self.operations_on_cpu,
            "fully_mapped": self.fully_mapped,
            "operators": [{"operator": op, "count": count, "status": status}
                          for op, count, status in self.operators]}


@dataclasses.dataclass(frozen=True)
class Compilation:
  compiled_model: bytes
  # The console output followed by the operation log, as stored next to the pushed model.
  log: str
  report: CompilerReport


def format_bytes(num_bytes: int) -> str:
  """Bytes in the compiler's units (B, KiB, MiB), e.g. 4.21MiB -> '4.21 MiB'."""
  for unit in ("MiB", "KiB"):
    if num_bytes >= _BYTE_UNITS[unit]:
      return f"{num_bytes / _BYTE_UNITS[unit]:.2f} {unit}"
  return f"{num_bytes} B"


def check_flags(flags: Sequence[str]) -> List[str]:
  """The extra compiler flags, refusing `-m`: the minimum runtime version is its own setting.

  Raises:
    ValueError: a flag sets the minimum runtime version.
  """
  for flag in flags:
    if flag in MIN_RUNTIME_VERSION_FLAGS or flag.startswith(tuple(
        f"{name}=" for name in MIN_RUNTIME_VERSION_FLAGS)):
      raise ValueError(f"compiler flag {flag!r} sets the minimum Edge TPU runtime version; use "
                       "the min_runtime_version setting (--min-runtime-version) instead")
  return list(flags)


def find_compiler(compiler_path: Optional[str] = None) -> Optional[str]:
  """The compiler to run: `compiler_path` if configured (it must exist), else PATH's, else None."""
  if compiler_path:
    resolved = shutil.which(compiler_path)
    if resolved is None:
      raise EdgeTpuCompilerError(f"the configured compiler {compiler_path!r} does not exist or is "
                                 "not executable")
    return resolved
  return shutil.which(COMPILER_NAME)


def _to_bytes(match: Optional[re.Match]) -> Optional[int]:
  if match is None:
    return None
  return int(round(float(match.group(1)) * _BYTE_UNITS[match.group(2)]))


def _search_int(pattern: str, text: str) -> Optional[int]:
  match = re.search(pattern, text)
  return int(match.group(1)) if match else None


def parse_operator_table(text: str) -> List[Tuple[str, int, str]]:
  """The rows under the 'Operator  Count  Status' header (console with -s, or the .log file)."""
  rows: List[Tuple[str, int, str]] = []
  in_table = False
  for line in text.splitlines():
    if re.match(r"^\s*Operator\s+Count\s+Status\s*$", line):
      in_table, rows = True, []  # The console and the log file both hold the table: keep the last.
      continue
    if in_table:
      match = _OPERATOR_ROW.match(line)
      if match:
        rows.append((match.group(1), int(match.group(2)), match.group(3)))
      elif line.strip():
        in_table = False
  return rows


def parse_compiler_log(text: str, compiler_path: str, command: List[str],
                       seconds: float) -> CompilerReport:
  """Reads the counts and memory figures from the compiler's console output and operation log."""
  operators = parse_operator_table(text)
  total = _search_int(r"Total number of operations:\s*(\d+)", text)
  on_edgetpu = _search_int(r"Number of operations that will run on Edge TPU:\s*(\d+)", text)
  on_cpu = _search_int(r"Number of operations that will run on CPU:\s*(\d+)", text)
  if operators:
    table_total = sum(count for _, count, _ in operators)
    table_mapped = sum(count for _, count, status in operators
                       if status == edgetpu_compatibility.MAPPED)
    total = table_total if total is None else total
    on_edgetpu = table_mapped if on_edgetpu is None else on_edgetpu
  elif on_edgetpu is None and on_cpu is None and total is not None:
    # The compiler prints the per-device counts only when something stays on the CPU.
    on_edgetpu = total
  if total is None and on_edgetpu is not None and on_cpu is not None:
    total = on_edgetpu + on_cpu
  if total is None or on_edgetpu is None:
    raise EdgeTpuCompilerError(
        f"cannot read the operation counts from the output of {compiler_path}:\n{text[-4000:]}")
  version = re.search(r"Edge TPU Compiler version\s+(\S.*?)\s*$", text, re.MULTILINE)
  return CompilerReport(
      compiler_path=compiler_path, command=command,
      compiler_version=version.group(1) if version else None,
      operations_total=total, operations_on_edgetpu=on_edgetpu,
      edgetpu_subgraphs=_search_int(r"Number of Edge TPU subgraphs:\s*(\d+)", text),
      on_chip_memory_used_bytes=_to_bytes(
          re.search(r"On-chip memory used for caching model parameters:\s*" + _SIZE, text)),
      on_chip_memory_remaining_bytes=_to_bytes(
          re.search(r"On-chip memory remaining for caching model parameters:\s*" + _SIZE, text)),
      off_chip_memory_used_bytes=_to_bytes(re.search(
          r"Off-chip memory used for streaming uncached model parameters:\s*" + _SIZE, text)),
      operators=operators, seconds=seconds)


def _run(command: List[str], timeout_seconds: float) -> Tuple[int, str]:
  """Runs the command in its own process group; on timeout kills the whole group."""
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, text=True, errors="replace",
                             start_new_session=True)
  try:
    output, _ = process.communicate(timeout=timeout_seconds)
  except subprocess.TimeoutExpired:
    os.killpg(process.pid, signal.SIGKILL)
    output, _ = process.communicate()
    raise EdgeTpuCompilerError(
        f"{command[0]} did not finish within {timeout_seconds:g} s and was killed; output so far:"
        f"\n{output[-4000:]}") from None
  return process.returncode, output


def compile_for_edgetpu(compiler_path: str, model_content: bytes, flags: Sequence[str] = (),
                        timeout_seconds: float = 600,
                        min_runtime_version: Optional[int] = None) -> Compilation:
  """Compiles the int8 model, with `-m min_runtime_version` when given.

  Raises:
    EdgeTpuCompilerError: on any failure, or when the compiled model needs a newer Edge TPU runtime
      than `min_runtime_version`.
    ValueError: `flags` set the minimum runtime version themselves (check_flags).
  """
  runtime_flags = [] if min_runtime_version is None else ["-m", str(min_runtime_version)]
  with tempfile.TemporaryDirectory(prefix="edgetpu_compile_") as work_dir:
    model_path = os.path.join(work_dir, f"{_MODEL_NAME}.tflite")
    out_dir = os.path.join(work_dir, "out")
    os.makedirs(out_dir)
    with open(model_path, "wb") as f:
      f.write(model_content)
    command = [compiler_path, "-s", "-o", out_dir, *runtime_flags, *check_flags(flags),
               model_path]
    logging.info("Running %s", " ".join(command))
    start = time.monotonic()
    returncode, console = _run(command, timeout_seconds)
    seconds = time.monotonic() - start
    compiled_path = os.path.join(out_dir, f"{_MODEL_NAME}_edgetpu.tflite")
    operation_log_path = os.path.join(out_dir, f"{_MODEL_NAME}_edgetpu.log")
    log = f"$ {' '.join(command)}\n{console}"
    if os.path.exists(operation_log_path):
      with open(operation_log_path, encoding="utf-8", errors="replace") as f:
        log += f"\n--- {os.path.basename(operation_log_path)} ---\n{f.read()}"
    if returncode != 0:
      raise EdgeTpuCompilerError(f"{compiler_path} exited with status {returncode}:\n{log[-4000:]}")
    if not os.path.exists(compiled_path):
      raise EdgeTpuCompilerError(
          f"{compiler_path} exited 0 but wrote no {os.path.basename(compiled_path)}:\n"
          f"{log[-4000:]}")
    with open(compiled_path, "rb") as f:
      compiled_model = f.read()
  report = dataclasses.replace(
      parse_compiler_log(log, compiler_path, command, seconds),
      requested_min_runtime_version=min_runtime_version,
      required_runtime_version=_required_runtime_version(compiler_path, compiled_model))
  if (min_runtime_version is not None and report.required_runtime_version is not None and
      report.required_runtime_version > min_runtime_version):
    raise EdgeTpuCompilerError(
        f"{compiler_path} was asked for Edge TPU runtime {min_runtime_version} (-m) but its output "
        f"needs runtime {report.required_runtime_version}")
  logging.info("edgetpu_compiler: %s", report.summary())
  return Compilation(compiled_model, log, report)


def _required_runtime_version(compiler_path: str, compiled_model: bytes) -> Optional[int]:
  try:
    return edgetpu_package.required_runtime_version(compiled_model)
  except ValueError as e:  # EdgeTpuPackageError, or not a TFLite flatbuffer at all.
    raise EdgeTpuCompilerError(f"{compiler_path} wrote a model whose Edge TPU runtime version "
                               f"cannot be read: {e}") from e
