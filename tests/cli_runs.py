"""Runs `mnist-tfx run` as a user does: a subprocess whose output is not a terminal."""

import dataclasses
import os
import subprocess
import sys
from typing import List

MNIST_TFX = os.path.join(os.path.dirname(sys.executable), "mnist-tfx")
# The slice is tiny: one in-process Beam worker is faster than spawning one per core.
BEAM_ARGS = ["--beam-arg=--direct_running_mode=in_memory"]
# Two epochs of batches of 32 on 2,000 images reach about 0.9; bless from 0.8 (and allow the
# larger quantization drop of a model trained for seconds) so the slice exercises the push.
TRAIN_ARGS = ["--epochs", "2", "--train-config", "batch_size=32", "--min-int8-accuracy", "0.8",
              "--max-quantization-drop", "0.05"]


@dataclasses.dataclass(frozen=True)
class CliRun:
  """What a person saw: the exit code and the console's lines (stdout, then stderr)."""
  pipeline_root: str
  returncode: int
  stdout: str
  stderr: str

  @property
  def lines(self) -> List[str]:
    return self.stdout.splitlines() + self.stderr.splitlines()


def run_cli(pipeline_root: str, data_dir: str, *extra: str) -> CliRun:
  """Runs `mnist-tfx run` on `data_dir` in a subprocess, output captured (not a terminal)."""
  completed = subprocess.run(
      [MNIST_TFX, "run", "--data-dir", data_dir, "--pipeline-root", pipeline_root, *BEAM_ARGS,
       *TRAIN_ARGS, *extra], capture_output=True, text=True, timeout=1800, check=False)
  return CliRun(pipeline_root, completed.returncode, completed.stdout, completed.stderr)
