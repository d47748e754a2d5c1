"""`python -m serving serve|predict`: the serving commands without the pipeline's `mnist-tfx`.

The serving image runs this: `mnist-tfx` is a console script of the whole project, whose install
requires TensorFlow and TFX; these two commands need neither.
"""

import argparse
import sys
from typing import List, Optional

from core import errors
from serving import cli


def build_parser() -> argparse.ArgumentParser:
  """The command line of the serving image's entry point (serving/Dockerfile)."""
  parser = argparse.ArgumentParser(
      prog="python -m serving",
      description="Serve the pushed MNIST model or classify image files with it (no TensorFlow).")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
  cli.add_parser(commands)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  from absl import logging
  # The server logs what it does (versions loaded, replaced, skipped); predict prints its answers
  # and only warnings and errors besides, as `mnist-tfx predict` does.
  logging.set_verbosity(logging.INFO if args.command == "serve" else logging.WARNING)
  try:
    return args.func(args)
  except Exception as error:  # pylint: disable=broad-except  # One line and the exit code.
    return errors.report(error, f"python -m serving {args.command}")


if __name__ == "__main__":
  sys.exit(main())
