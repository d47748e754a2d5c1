"""`mnist-tfx compare`: the options, and the command that runs the comparison and prints its table.

No TensorFlow import until the command runs (`mnist-tfx --help` answers at once).
"""

import argparse
import os
from typing import List

from core import errors
from core import paths
from pipeline import options

DEFAULT_OUTPUT = os.path.join("output", "compare")
DEFAULT_SEEDS = "0,1,2"
QUICK_SEEDS = "0"


def seed_list(text: str) -> List[int]:
  """An argparse type: comma-separated distinct non-negative integers, e.g. "0,1,2"."""
  try:
    seeds = [int(part) for part in text.split(",")]
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"expected integers separated by commas, got {text!r}") from None
  if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
    raise argparse.ArgumentTypeError(f"seeds must be distinct and non-negative, got {text!r}")
  return seeds


def add_parser(commands) -> None:
  """Registers the `compare` subcommand on the `mnist-tfx` subparsers."""
  compare = commands.add_parser(
      "compare", help="Train every route to an int8 model under one recipe, several seeds each, "
      "and tabulate them.",
      description="Trains the same networks with the hand-built QAT trainer and with Keras "
      "(tfmot QAT, and float + post-training quantization) under one training recipe, the "
      "seed's Keras MLP also under its own recipe, and the hand-built CNN's accurate preset; "
      "converts each with the project's int8 conversion and runs it with the int8 runtime. "
      "Writes OUTPUT/comparison.md, OUTPUT/comparison.json and PNG plots. On full MNIST with 3 "
      "seeds this takes about 1.5 hours on 2 busy cores; --quick takes minutes.")
  compare.add_argument(
      "--data-dir", default=paths.bundled_data_dir(),
      help="A directory with the four MNIST-format IDX files (as for `run`). Default: the MNIST "
      "bundled with this repository.")
  compare.add_argument("--seeds", type=seed_list,
                       help=f"Seeds to train every route with (default: {DEFAULT_SEEDS}; "
                       f"{QUICK_SEEDS} with --quick).")
  compare.add_argument("--epochs", type=options.positive_int,
                       help="Epochs for every route (default: each route's recipe's; 1 with "
                       "--quick).")
  compare.add_argument("--routes", type=lambda text: text.split(","),
                       help="Only these routes, comma-separated keys (default: every route; "
                       "comparison.json lists the keys).")
  compare.add_argument("--output", default=DEFAULT_OUTPUT,
                       help="Directory for the results, the Examples and each run's models "
                       "(default: ./%(default)s).")
  compare.add_argument("--resume", action="store_true",
                       help="Reuse the runs an interrupted comparison in OUTPUT finished (same "
                       "route settings, seed and data) instead of training them again.")
  compare.add_argument("--quick", action="store_true",
                       help="Train on the first 6,000 training images and test on the first "
                       "1,000 test images (fewer when the data has fewer), 1 epoch and one seed "
                       "unless --epochs / --seeds say otherwise: every route in minutes.")
  compare.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
  """Runs the comparison, prints comparison.md and where the results are.

  Raises:
    errors.PipelineInputError: an unknown route key, or bad IDX files (nothing written).
  """
  from mnist_tfx.compare import routes  # Imports TensorFlow: not for `--help`.
  from mnist_tfx.compare import run
  route_list = routes.routes()
  if args.routes:
    known = [route.key for route in route_list]
    unknown = sorted(set(args.routes) - set(known))
    if unknown:
      raise errors.PipelineInputError(f"unknown route(s) {unknown}; the routes are {known}")
    route_list = [route for route in route_list if route.key in args.routes]
  seeds = args.seeds or seed_list(QUICK_SEEDS if args.quick else DEFAULT_SEEDS)
  output = os.path.abspath(args.output)
  run.run_comparison(args.data_dir, output, seeds=seeds, epochs=args.epochs, quick=args.quick,
                     resume=args.resume, route_list=route_list, progress=print)
  with open(os.path.join(output, run.MARKDOWN_FILE)) as f:
    print(f.read())
  print(f"Results: {output}/{{{run.MARKDOWN_FILE},{run.JSON_FILE},{run.ACCURACY_SIZE_PLOT},"
        f"{run.CURVES_PLOT}}}")
  return errors.EXIT_OK
