"""Tests of the edgetpu_compiler wrapper against stand-in executables that speak the real CLI.

The real compiler cannot be installed here (Coral's apt repository, x86-64 Linux only, no network);
the stand-ins (testdata/standin_edgetpu_compiler.py) take the same flags and write the same files
and log layout, and label their output as a stand-in's.
"""

import os
import re
import sys
import time

from ai_edge_litert.interpreter import Interpreter
import pytest

from components.pusher import edgetpu_compiler
from components.pusher import edgetpu_package
from components.pusher.testdata import standins
from core import int8_tflite

# The console summary of a partially mapped compilation, in the layout edgetpu_compiler 16 prints.
REAL_FORMAT_OUTPUT = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 1524 ms.

Input model: detector.tflite
Input size: 4.24MiB
Output model: detector_edgetpu.tflite
Output size: 5.57MiB
On-chip memory used for caching model parameters: 4.21MiB
On-chip memory remaining for caching model parameters: 3.29MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 267
Operation log: detector_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of \
the model will instead run on the CPU, which is slower.
Number of operations that will run on Edge TPU: 264
Number of operations that will run on CPU: 3

Operator                       Count      Status

ADD                            42         Mapped to Edge TPU
CUSTOM                         1          Operation is working on an unsupported data type
CONV_2D                        222        Mapped to Edge TPU
DEQUANTIZE                     2          Operation is working on an unsupported data type
Compilation child process completed within timeout period.
Compilation succeeded!
"""


@pytest.fixture(scope="module")
def model_content(trained_model_dir) -> bytes:
  return int8_tflite.convert_to_int8_tflite(trained_model_dir)


@pytest.fixture(scope="module")
def op_names(model_content):
  interpreter = Interpreter(model_content=model_content)
  # The runtime's own operator list (a private but long-standing interpreter method).
  return [op["op_name"] for op in interpreter._get_ops_details()]


def test_parses_the_real_log_layout():
  report = edgetpu_compiler.parse_compiler_log(REAL_FORMAT_OUTPUT, "edgetpu_compiler", [], 1.5)
  assert report.compiler_version == "16.0.384591198"
  assert (report.operations_total, report.operations_on_edgetpu, report.operations_on_cpu) == (
      267, 264, 3)
  assert not report.fully_mapped
  assert report.on_chip_memory_used_bytes == round(4.21 * 1024**2)
  assert report.on_chip_memory_remaining_bytes == round(3.29 * 1024**2)
  assert report.off_chip_memory_used_bytes == 0
  assert report.edgetpu_subgraphs == 1
  assert report.operators[1] == ("CUSTOM", 1, "Operation is working on an unsupported data type")
  assert sum(count for _, count, _ in report.operators) == 267


def test_fully_mapped_output_without_per_device_counts():
  # When everything maps the compiler prints no "Number of operations that will run" lines.
  text = REAL_FORMAT_OUTPUT.split("\nModel successfully compiled")[0]
  report = edgetpu_compiler.parse_compiler_log(text, "edgetpu_compiler", [], 1.0)
  assert report.fully_mapped and report.operations_on_edgetpu == 267


def test_unreadable_output_is_an_error():
  with pytest.raises(edgetpu_compiler.EdgeTpuCompilerError, match="cannot read"):
    edgetpu_compiler.parse_compiler_log("Segmentation fault", "edgetpu_compiler", [], 0.1)


def test_success(tmp_path, model_content, op_names):
  compiler = standins.write_standin(str(tmp_path / "bin"), "success")
  compilation = edgetpu_compiler.compile_for_edgetpu(compiler, model_content, ["-a"], 120,
                                                     min_runtime_version=13)
  report = compilation.report
  assert report.fully_mapped
  assert report.operations_total == report.operations_on_edgetpu == len(op_names)
  assert "test stand-in" in report.compiler_version
  assert report.command[:4] == [compiler, "-s", "-o", report.command[3]]
  assert report.command[4:7] == ["-m", "13", "-a"]
  assert "--- model_edgetpu.log ---" in compilation.log
  assert report.on_chip_memory_used_bytes == pytest.approx(len(model_content), rel=0.01)
  assert (report.off_chip_memory_used_bytes, report.edgetpu_subgraphs) == (0, 1)
  assert report.slowdowns() == []
  # As a real compiled model: one edgetpu-custom-op whose package needs the runtime asked for, and
  # no CPU kernel for it.
  assert report.requested_min_runtime_version == report.required_runtime_version == 13
  assert edgetpu_package.required_runtime_version(compilation.compiled_model) == 13
  with pytest.raises(RuntimeError, match="unresolved custom op: edgetpu-custom-op"):
    Interpreter(model_content=compilation.compiled_model).allocate_tensors()


def test_without_m_the_compiler_default_runtime_is_recorded(tmp_path, model_content):
  compiler = standins.write_standin(str(tmp_path / "bin"), "success")
  report = edgetpu_compiler.compile_for_edgetpu(compiler, model_content, (), 120).report
  assert "-m" not in report.command
  # The stand-in imitates edgetpu_compiler 16, whose default is runtime 14.
  assert (report.requested_min_runtime_version, report.required_runtime_version) == (None, 14)
  assert "needs Edge TPU runtime 14 or later" in report.summary()


def test_output_needing_a_newer_runtime_than_asked_is_an_error(tmp_path, model_content):
  """A compiler that ignores -m (here: a wrapper dropping it before the stand-in, which then
  targets its default 14) must not get its output pushed as runtime-13 compatible."""
  compiler = str(tmp_path / "edgetpu_compiler")
  with open(compiler, "w") as f:
    f.write(f"#!{sys.executable}\nimport os, sys\nargs = sys.argv[1:]\ni = args.index('-m')\n"
            f"del args[i:i + 2]\nos.execv(sys.executable, [sys.executable, "
            f"{standins.STANDIN_SCRIPT!r}, '--standin=success', *args])\n")
  os.chmod(compiler, 0o755)
  with pytest.raises(edgetpu_compiler.EdgeTpuCompilerError,
                     match=r"asked for Edge TPU runtime 13 \(-m\) but its output needs runtime 14"):
    edgetpu_compiler.compile_for_edgetpu(compiler, model_content, (), 120, min_runtime_version=13)


@pytest.mark.parametrize("flags", [["-m", "13"], ["--min_runtime_version", "13"],
                                   ["--min_runtime_version=13"]])
def test_m_among_the_extra_flags_is_refused(tmp_path, model_content, flags):
  compiler = standins.write_standin(str(tmp_path / "bin"), "success")
  with pytest.raises(ValueError, match="sets the minimum Edge TPU runtime version"):
    edgetpu_compiler.compile_for_edgetpu(compiler, model_content, flags, 120)


@pytest.mark.parametrize("behaviour, expected", [
    ("offchip", [r"\d+\.\d\d KiB of parameters streamed from off-chip memory"]),
    ("subgraphs", ["2 Edge TPU subgraphs"]),
])
def test_slow_compilations_are_reported(tmp_path, model_content, behaviour, expected):
  compiler = standins.write_standin(str(tmp_path / "bin"), behaviour)
  compilation = edgetpu_compiler.compile_for_edgetpu(compiler, model_content, (), 120)
  slowdowns = compilation.report.slowdowns()
  assert len(slowdowns) == len(expected)
  for slowdown, pattern in zip(slowdowns, expected, strict=True):
    assert re.fullmatch(pattern, slowdown), slowdown
  if behaviour == "subgraphs":  # Two edgetpu-custom-ops around the operator left on the CPU.
    ops = [op["op_name"] for op in Interpreter(
        model_content=compilation.compiled_model)._get_ops_details()]
    assert ops.count("edgetpu-custom-op") == 2 and ops[1] != "edgetpu-custom-op"


def test_partial_mapping_is_reported(tmp_path, model_content, op_names):
  compiler = standins.write_standin(str(tmp_path / "bin"), "partial")
  report = edgetpu_compiler.compile_for_edgetpu(compiler, model_content, (), 120).report
  assert not report.fully_mapped
  assert report.operations_on_cpu == 1
  assert (op_names[-1], 1, "Operation not supported") in report.operators


def test_failure_raises_with_the_log(tmp_path, model_content):
  compiler = standins.write_standin(str(tmp_path / "bin"), "fail")
  with pytest.raises(edgetpu_compiler.EdgeTpuCompilerError,
                     match=r"(?s)exited with status 1.*Compilation failed"):
    edgetpu_compiler.compile_for_edgetpu(compiler, model_content, (), 120)


def _running_standins(behaviour: str):
  found = []
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read().decode(errors="replace")
    except OSError:
      continue
    if standins.STANDIN_SCRIPT in cmdline and f"--standin={behaviour}" in cmdline:
      found.append(pid)
  return found


def test_timeout_kills_the_compiler(tmp_path, model_content):
  compiler = standins.write_standin(str(tmp_path / "bin"), "hang")
  start = time.monotonic()
  with pytest.raises(edgetpu_compiler.EdgeTpuCompilerError, match="did not finish within 3 s"):
    edgetpu_compiler.compile_for_edgetpu(compiler, model_content, (), 3)
  assert time.monotonic() - start < 30
  assert not _running_standins("hang")


def test_find_compiler(tmp_path, monkeypatch):
  with pytest.raises(edgetpu_compiler.EdgeTpuCompilerError, match="does not exist"):
    edgetpu_compiler.find_compiler(str(tmp_path / "missing" / "edgetpu_compiler"))
  monkeypatch.setenv("PATH", str(tmp_path / "empty"))
  assert edgetpu_compiler.find_compiler() is None
  compiler = standins.write_standin(str(tmp_path / "bin"), "success")
  monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{tmp_path / 'empty'}")
  assert edgetpu_compiler.find_compiler() == compiler
  assert edgetpu_compiler.find_compiler(compiler) == compiler
