"""Puts a stand-in `edgetpu_compiler` (see standin_edgetpu_compiler.py) on a test's PATH."""

import os
import stat
import sys

STANDIN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "standin_edgetpu_compiler.py")


def write_standin(bin_dir: str, behaviour: str) -> str:
  """Writes BIN_DIR/edgetpu_compiler running the stand-in with `behaviour`; returns its path.

  The wrapper pins this interpreter (the stand-in reads the model with the `tflite` package) and
  passes the behaviour; every other argument is the caller's, as for the real compiler.
  """
  os.makedirs(bin_dir, exist_ok=True)
  path = os.path.join(bin_dir, "edgetpu_compiler")
  with open(path, "w") as f:
    f.write(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN_SCRIPT}" --standin={behaviour} "$@"\n')
  os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
  return path
