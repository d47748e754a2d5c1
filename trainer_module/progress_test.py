"""The training progress display: mode selection and the few plain lines of `lines` mode."""

import io
import re

import pytest

from trainer_module import progress


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_mode_defaults_to_a_bar_on_a_terminal_outside_ci(monkeypatch):
  monkeypatch.delenv(progress.ENV_VAR, raising=False)
  monkeypatch.delenv("CI", raising=False)
  assert progress.mode_from_env(_Terminal()) == "bar"
  assert progress.mode_from_env(io.StringIO()) == "lines"
  monkeypatch.setenv("CI", "true")
  assert progress.mode_from_env(_Terminal()) == "lines"


def test_mode_from_the_environment_variable(monkeypatch):
  monkeypatch.setenv(progress.ENV_VAR, "off")
  assert progress.mode_from_env(_Terminal()) == "off"
  monkeypatch.setenv(progress.ENV_VAR, "Lines")
  assert progress.mode_from_env(_Terminal()) == "lines"
  monkeypatch.setenv(progress.ENV_VAR, "fancy")
  with pytest.raises(ValueError, match=r"MNIST_TFX_PROGRESS='fancy': expected one of bar, lines"):
    progress.mode_from_env(_Terminal())


def test_lines_mode_prints_one_line_per_quarter():
  stream = io.StringIO()
  bar = progress.TrainingProgress(total_examples=1000, mode="lines", stream=stream)
  for _ in range(50):  # 50 updates of 20 examples, 2 correct and a loss sum of 10 each.
    bar.update(20, 10.0, 2.0)
  bar.close()
  lines = stream.getvalue().splitlines()
  assert len(lines) == 4
  assert [re.search(r"(\d+)/1000 examples \((\d+)%\)", line).groups() for line in lines] == [
      ("260", "26"), ("500", "50"), ("760", "76"), ("1000", "100")]
  assert all("loss 0.5000, accuracy 0.1000, ETA" in line for line in lines)


def test_resumed_run_counts_from_where_it_stopped():
  stream = io.StringIO()
  bar = progress.TrainingProgress(total_examples=1000, done_examples=600, mode="lines",
                                  stream=stream)
  bar.update(400, 40.0, 400.0)
  assert stream.getvalue().startswith("training: 1000/1000 examples (100%)")


def test_bar_and_off_modes(monkeypatch):
  stream = _Terminal()
  bar = progress.TrainingProgress(total_examples=100, mode="bar", stream=stream)
  bar.update(50, 25.0, 40.0)
  bar.close()
  assert re.search(r"50(\.0)?/100", stream.getvalue()) and "loss=0.5000" in stream.getvalue()
  quiet = io.StringIO()
  bar = progress.TrainingProgress(total_examples=100, mode="off", stream=quiet)
  bar.update(100, 1.0, 1.0)
  bar.close()
  assert quiet.getvalue() == ""
