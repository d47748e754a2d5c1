"""What `mnist-tfx` shows a person: a few lines on the terminal, everything else in a log file.

While a run lasts, file descriptors 1 and 2 point at the run's log file, so that TFX, Beam, absl,
TensorFlow's C++ logs and the output of Beam's worker processes (which inherit them) all land
there. The terminal keeps a duplicate of its stderr: `sys.stderr` is re-bound to it (the trainer's
progress bar writes there) and the console lines (a component starts, a component finishes, the
one-line error) are written to it. With --verbose the log is also copied to the terminal.

No TensorFlow or TFX import: the console is set up before they are imported.
"""

import contextlib
import datetime
import enum
import logging
import os
import sys
import threading
import time
from typing import Callable, Iterator, List, Optional, TextIO

from trainer_module import progress

LOGS_DIR = "logs"

# What TFX's LocalDagRunner logs around each component (tfx/orchestration/local/
# local_dag_runner.py, tfx 1.16), recognised by template and argument, not by formatted text.
COMPONENT_RUNNING = "Component %s is running."
COMPONENT_FINISHED = "Component %s is finished."

_LOG_FORMAT = "%(levelname).1s%(asctime)s %(process)d %(filename)s:%(lineno)d] %(message)s"


class Verbosity(enum.IntEnum):
  QUIET = 0  # The summary alone.
  NORMAL = 1  # A line as each component starts and finishes, the summary.
  VERBOSE = 2  # And every log line, tracebacks included.


def new_log_path(pipeline_root: str) -> str:
  """PIPELINE_ROOT/logs/run-YYYYmmdd-HHMMSS.log (UTC), one file per run."""
  now = datetime.datetime.now(datetime.timezone.utc)
  return os.path.join(pipeline_root, LOGS_DIR, f"run-{now:%Y%m%d-%H%M%S}.log")


def set_progress_display(verbosity: Verbosity) -> None:
  """--quiet turns the trainer's progress display off; otherwise the trainer decides."""
  if verbosity == Verbosity.QUIET:
    os.environ[progress.ENV_VAR] = "off"


class ComponentLines(logging.Handler):
  """Writes `[i/n] Component ...` when LocalDagRunner starts a component and when it finishes one.

  `describe(node_id)` gives the finished component's one figure that matters (may be empty).
  `running` is the component started and not finished: after a failure, the one that failed.
  With no stream (--quiet) it only keeps `running`.
  """

  def __init__(self, stream: Optional[TextIO], node_ids: List[str], describe: Callable[[str], str]):
    super().__init__(logging.INFO)
    self._stream = stream
    self._node_ids = node_ids
    self._describe = describe
    self._started = 0.0
    self.running: Optional[str] = None

  def _position(self, node_id: str) -> str:
    width = len(str(len(self._node_ids)))
    index = self._node_ids.index(node_id) + 1 if node_id in self._node_ids else 0
    return f"[{index:>{width}}/{len(self._node_ids)}]"

  def emit(self, record: logging.LogRecord) -> None:
    if record.msg not in (COMPONENT_RUNNING, COMPONENT_FINISHED) or not record.args:
      return
    node_id = str(record.args[0])
    if record.msg == COMPONENT_RUNNING:
      self.running, self._started = node_id, time.monotonic()
      if self._stream is None:
        return
      line = f"{self._position(node_id)} {node_id} ..."
    else:
      self.running = None
      if self._stream is None:
        return
      seconds = time.monotonic() - self._started
      try:
        figure = self._describe(node_id)
      except Exception:  # pylint: disable=broad-except
        logging.getLogger(__name__).exception("Cannot describe the outputs of %s", node_id)
        figure = ""
      line = f"{self._position(node_id)} {node_id} done in {seconds:.1f} s"
      if figure:
        line += f": {figure}"
    self._stream.write(line + "\n")
    self._stream.flush()


def _tee(source_fd: int, log_fd: int, terminal_fd: int) -> None:
  """Copies what is written to the pipe `source_fd` into the log and the terminal until EOF."""
  while True:
    chunk = os.read(source_fd, 65536)
    if not chunk:
      break
    os.write(log_fd, chunk)
    os.write(terminal_fd, chunk)
  os.close(source_fd)


@contextlib.contextmanager
def output_to_log(log_path: str, verbosity: Verbosity) -> Iterator[TextIO]:
  """Sends fds 1 and 2, Python logging and warnings to `log_path`; yields the terminal stream.

  Restores file descriptors, `sys.stderr`, logging handlers and warning capture on exit.
  """
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  for stream in (sys.stdout, sys.stderr):
    stream.flush()
  saved_fds = (os.dup(1), os.dup(2))
  terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
  log_file = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
  tee_thread = None
  if verbosity == Verbosity.VERBOSE:
    read_fd, write_fd = os.pipe()
    tee_thread = threading.Thread(target=_tee, args=(read_fd, log_file.fileno(),
                                                     terminal.fileno()), daemon=True)
    tee_thread.start()
    target_fd = write_fd
  else:
    target_fd = log_file.fileno()
  os.dup2(target_fd, 1)
  os.dup2(target_fd, 2)
  if tee_thread:
    os.close(target_fd)

  root = logging.getLogger()
  saved_handlers, saved_level = root.handlers[:], root.level
  for handler in saved_handlers:
    root.removeHandler(handler)
  formatter = logging.Formatter(_LOG_FORMAT)
  # With --verbose Python's records reach the terminal through fd 2's tee as well.
  log_handler = logging.StreamHandler(sys.__stderr__ if tee_thread else log_file)
  log_handler.setFormatter(formatter)
  root.addHandler(log_handler)
  root.setLevel(logging.INFO)
  logging.captureWarnings(True)
  saved_stderr = sys.stderr
  sys.stderr = terminal
  try:
    yield terminal
  finally:
    sys.stderr = saved_stderr
    logging.captureWarnings(False)
    root.removeHandler(log_handler)
    for handler in saved_handlers:
      root.addHandler(handler)
    root.setLevel(saved_level)
    for stream in (sys.stdout, sys.__stderr__):
      stream.flush()
    os.dup2(saved_fds[0], 1)
    os.dup2(saved_fds[1], 2)
    for fd in saved_fds:
      os.close(fd)
    if tee_thread:
      # Beam's worker processes have ended with the pipeline; what they wrote is flushed here.
      tee_thread.join(timeout=10)
    log_file.close()
    terminal.close()
