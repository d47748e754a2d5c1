"""Runs components/pusher/testdata/push_process.py: a push in a separate, killable process."""

import os
import subprocess
import sys

from tests import mnist_slices

PUSH_PROCESS = str(mnist_slices.REPO_ROOT / "components" / "pusher" / "testdata" /
                   "push_process.py")


def push_process(destination: str, model_file: str, *mode: str) -> subprocess.Popen:
  """Starts a separate Python process publishing one version (stdout: its JSON result)."""
  env = dict(os.environ, PYTHONPATH=str(mnist_slices.REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.Popen([sys.executable, PUSH_PROCESS, destination, model_file, *mode],
                          stdout=subprocess.PIPE, text=True, env=env)
