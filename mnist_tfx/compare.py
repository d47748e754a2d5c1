"""`mnist-tfx compare`: hand-built QAT against Keras, tfmot and post-training quantization.

Trains the six routes of `mnist_tfx/comparison.py` on the same data, converts and measures each
with the project's one int8 conversion and int8 runtime, and writes OUTPUT/comparison.md,
OUTPUT/comparison.json and two PNG plots.
"""

import argparse
import os

from core import paths
from pipeline import options

DEFAULT_OUTPUT = os.path.join("output", "compare")


def add_parser(commands) -> None:
  """Registers the `compare` subcommand on the `mnist-tfx` subparsers."""
  compare = commands.add_parser(
      "compare", help="Train six routes to an int8 model side by side and tabulate them.",
      description="Trains the seed's Keras MLP (float + post-training quantization, and tfmot "
      "QAT), the seed's 784-512-10 network with hand-built QAT, the project's default hand-built "
      "QAT CNN, and that CNN in Keras (tfmot QAT, and float + post-training quantization), all on "
      "the same data; converts each with the project's int8 conversion and runs it with the int8 "
      "runtime. Writes OUTPUT/comparison.md, OUTPUT/comparison.json and PNG plots (int8 accuracy "
      "against size, per-epoch evaluation accuracy). On full MNIST this takes tens of minutes on "
      "2 cores; --quick takes a few.")
  compare.add_argument(
      "--data-dir", default=paths.bundled_data_dir(),
      help="A directory with the four MNIST-format IDX files (as for `run`). Default: the MNIST "
      "bundled with this repository.")
  compare.add_argument("--epochs", type=options.positive_int,
                       help="Epochs for every route (default: each route's own: 5 for the seed's "
                       "Keras MLP, the hand-built trainer's default for the others; 1 with "
                       "--quick).")
  compare.add_argument("--output", default=DEFAULT_OUTPUT,
                       help="Directory for the results, the Examples and each route's models "
                       "(default: ./%(default)s).")
  compare.add_argument("--quick", action="store_true",
                       help="Train on the first 6,000 training images and test on the first "
                       "1,000 test images (fewer when the data has fewer), 1 epoch unless "
                       "--epochs is given: every route in a few minutes.")
  compare.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
  from mnist_tfx import comparison  # Imports TensorFlow and TFX: not for `--help`.
  output = os.path.abspath(args.output)
  comparison.run_comparison(args.data_dir, output, epochs=args.epochs, quick=args.quick)
  with open(os.path.join(output, comparison.MARKDOWN_FILE)) as f:
    print(f.read())
  print(f"Results: {output}/{{{comparison.MARKDOWN_FILE},{comparison.JSON_FILE},"
        f"{comparison.ACCURACY_SIZE_PLOT},{comparison.CURVES_PLOT}}}")
  return 0
