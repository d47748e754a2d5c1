"""Live training progress on sys.stderr: a tqdm bar, a few plain lines, or nothing.

The mode comes from the environment variable MNIST_TFX_PROGRESS (the CLI sets it, e.g. `-q` ->
off): `bar` (tqdm: examples/s, loss, accuracy, ETA), `lines` (one plain line per quarter of the run,
for logs and CI) or `off`. Unset: `bar` when sys.stderr is a terminal and the CI variable is unset,
else `lines`.
"""

import os
import sys
import time
from typing import Optional, TextIO

import tqdm

ENV_VAR = "MNIST_TFX_PROGRESS"
MODES = ("bar", "lines", "off")
LINES_PER_RUN = 4  # In `lines` mode: one line as each quarter of the run's examples completes.


def mode_from_env(stream: Optional[TextIO] = None) -> str:
  """The progress mode: MNIST_TFX_PROGRESS, else `bar` on a terminal outside CI, else `lines`.

  Raises:
    ValueError: MNIST_TFX_PROGRESS is set to something other than bar, lines or off.
  """
  value = os.environ.get(ENV_VAR, "").strip().lower()
  if value:
    if value not in MODES:
      raise ValueError(f"{ENV_VAR}={value!r}: expected one of {', '.join(MODES)}.")
    return value
  stream = stream or sys.stderr
  is_tty = hasattr(stream, "isatty") and stream.isatty()
  return "bar" if is_tty and not os.environ.get("CI") else "lines"


class TrainingProgress:
  """Reports examples trained out of `total_examples` with the running loss and accuracy.

  `update(examples, loss_sum, correct)` takes the examples of the steps just run and their summed
  loss and number of correct predictions; the figures shown are averages since the last report.
  """

  def __init__(self, total_examples: int, done_examples: int = 0, mode: Optional[str] = None,
               stream: Optional[TextIO] = None, description: str = "training"):
    self.stream = stream or sys.stderr
    self.mode = mode or mode_from_env(self.stream)
    self.total = total_examples
    self.done = done_examples
    self.description = description
    self._start, self._start_done = time.perf_counter(), done_examples
    self._loss_sum, self._correct, self._examples = 0.0, 0.0, 0
    self._next_line = self._line_threshold(done_examples)
    self._bar = None
    if self.mode == "bar":
      self._bar = tqdm.tqdm(total=total_examples, initial=done_examples, file=self.stream,
                            desc=description, unit="ex", unit_scale=True, dynamic_ncols=True,
                            smoothing=0.1)

  def _line_threshold(self, done: int) -> int:
    quarter = max(1, -(-self.total // LINES_PER_RUN))
    return min(self.total, (done // quarter + 1) * quarter)

  def update(self, examples: int, loss_sum: float, correct: float) -> None:
    self.done += examples
    self._loss_sum, self._correct, self._examples = (
        self._loss_sum + loss_sum, self._correct + correct, self._examples + examples)
    if self.mode == "bar":
      self._bar.set_postfix(loss=f"{self._loss_sum / self._examples:.4f}",
                            acc=f"{self._correct / self._examples:.4f}", refresh=False)
      self._bar.update(examples)
      self._loss_sum, self._correct, self._examples = 0.0, 0.0, 0
    elif self.mode == "lines" and self.done >= self._next_line:
      elapsed = time.perf_counter() - self._start
      rate = (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0
      eta = (self.total - self.done) / rate if rate > 0 else 0.0
      self.stream.write(
          f"{self.description}: {self.done}/{self.total} examples ({self.done / self.total:.0%}), "
          f"{rate:.0f} examples/s, loss {self._loss_sum / self._examples:.4f}, accuracy "
          f"{self._correct / self._examples:.4f}, ETA {eta:.0f} s\n")
      self.stream.flush()
      self._loss_sum, self._correct, self._examples = 0.0, 0.0, 0
      self._next_line = self._line_threshold(self.done)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None
