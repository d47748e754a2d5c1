"""The console's pieces: where output goes, the component lines and the one-line error."""

import io
import logging
import os
import subprocess
import sys
import warnings

from mnist_tfx import console


def test_output_to_log_keeps_the_terminal_for_console_lines_only(tmp_path, capfd):
  log_path = str(tmp_path / "logs" / "run.log")
  with console.output_to_log(log_path, console.Verbosity.NORMAL) as terminal:
    os.write(2, b"C++ notice on fd 2\n")
    os.write(1, b"print on fd 1\n")
    logging.getLogger("absl").warning("a library's warning")
    warnings.warn("a deprecation", stacklevel=1)
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('a Beam worker\\n')"],
                   check=True)
    terminal.write("a console line\n")
    assert sys.stderr is terminal  # Where the trainer's progress bar writes.
  out, err = capfd.readouterr()
  assert (out, err) == ("", "a console line\n")
  with open(log_path) as f:
    log = f.read()
  for text in ("C++ notice on fd 2", "print on fd 1", "a library's warning", "a deprecation",
               "a Beam worker"):
    assert text in log
  assert "a console line" not in log
  os.write(2, b"after\n")  # The file descriptors are restored.
  assert capfd.readouterr().err == "after\n"


def test_verbose_copies_the_log_to_the_terminal(tmp_path, capfd):
  log_path = str(tmp_path / "run.log")
  with console.output_to_log(log_path, console.Verbosity.VERBOSE):
    os.write(2, b"C++ notice on fd 2\n")
    logging.getLogger("absl").warning("a library's warning")
  err = capfd.readouterr().err
  with open(log_path) as f:
    log = f.read()
  for text in ("C++ notice on fd 2", "a library's warning"):
    assert text in err and text in log


def test_component_lines_follow_local_dag_runner_records():
  stream = io.StringIO()
  lines = console.ComponentLines(stream, ["ExampleGen", "Trainer"],
                                 lambda node_id: "2000 examples" if node_id == "ExampleGen" else "")
  logger = logging.getLogger("console_test.local_dag_runner")
  logger.setLevel(logging.INFO)
  logger.addHandler(lines)
  try:
    logger.info(console.COMPONENT_RUNNING, "ExampleGen")
    assert lines.running == "ExampleGen"
    logger.info(console.COMPONENT_FINISHED, "ExampleGen")
    logger.info("Component Trainer is running.")  # Same text, not LocalDagRunner's record.
    logger.info(console.COMPONENT_RUNNING, "Trainer")
  finally:
    logger.removeHandler(lines)
  printed = stream.getvalue().splitlines()
  assert printed[0] == "[1/2] ExampleGen ..."
  assert printed[1].startswith("[1/2] ExampleGen done in ")
  assert printed[1].endswith(" s: 2000 examples")
  assert printed[2:] == ["[2/2] Trainer ..."]
  assert lines.running == "Trainer"  # Had it failed now, this is the component to name.
