"""`mnist-tfx`: run the pipeline locally, compile it for Kubeflow and look at what it produced.

Each subcommand registers its own options; the pipeline's options are shared (options.py), so a
local run and a Kubeflow compilation take the same settings.
"""

import argparse
import os
import pathlib
import signal
import sys
import tempfile
import time
from typing import List, Optional
import warnings

from mnist_tfx import options

BUNDLED_DATA_DIR = str(pathlib.Path(__file__).resolve().parent.parent / "data" / "mnist")
DEFAULT_DOWNLOAD_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mnist-edgetpu-tfx")


def _quiet_libraries() -> None:
  """Keeps TensorFlow's C++ start-up notices and the Google clients' deprecation warnings out.

  Set before TensorFlow is imported (TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, at import), and
  through the environment so that Beam's worker processes inherit them.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
  warnings.filterwarnings("ignore", category=FutureWarning)
  warnings.filterwarnings("ignore", category=DeprecationWarning)


def _add_run_parser(commands) -> None:
  run = commands.add_parser(
      "run", help="Run the pipeline locally (LocalDagRunner on Apache Beam).",
      description="Run the whole pipeline with TFX's LocalDagRunner and print a summary. "
      "Components whose inputs and parameters did not change are served from the cache; the "
      "Trainer's cache also follows the training code (every file of trainer_module/ and the "
      "project modules it imports), so edited training code is retrained.")
  data = run.add_mutually_exclusive_group()
  data.add_argument(
      "--data-dir", default=BUNDLED_DATA_DIR,
      help="A directory (any TFX filesystem path) with MNIST-format IDX files under the four "
      "standard names, gzipped or raw, e.g. MNIST, Fashion-MNIST or KMNIST. A SHA256SUMS file "
      "beside them is verified. Default: the MNIST bundled with this repository.")
  data.add_argument(
      "--download", action="store_true",
      help="Fetch the four MNIST files from the public mirrors into --download-cache (verifying "
      "SHA-256) and use them instead of --data-dir.")
  run.add_argument("--download-cache", default=DEFAULT_DOWNLOAD_CACHE,
                   help="Cache directory for --download (default: %(default)s).")
  options.add_pipeline_root(run)
  options.add_beam_args(run, "Default: the multi-processing DirectRunner with one worker per "
                        "core.")
  run.add_argument("--no-cache", action="store_true",
                   help="Run every component again instead of reusing cached outputs.")
  options.add_pipeline_options(run)
  run.set_defaults(func=run_command)


def _add_tensorboard_parser(commands) -> None:
  board = commands.add_parser(
      "tensorboard", help="Start TensorBoard on the latest training run and evaluation.",
      description="Looks up the newest Trainer run (scalars, quantization ranges, histograms, "
      "images, the graph with its FakeQuant ops) and the newest evaluation in the pipeline's ML "
      "Metadata and serves them with TensorBoard until interrupted (Ctrl-C).")
  options.add_pipeline_root(board)
  board.add_argument("--host", default="127.0.0.1",
                     help="Address to listen on (default: %(default)s, this machine only; "
                     "0.0.0.0 for every interface).")
  board.add_argument("--port", type=int, default=6006,
                     help="Port (default: %(default)s; 0 picks a free one).")
  board.set_defaults(func=tensorboard_command)


def build_parser() -> argparse.ArgumentParser:
  from mnist_tfx import compare
  from mnist_tfx.kubeflow import cli as kubeflow_cli
  from serving import cli as serving_cli
  parser = argparse.ArgumentParser(
      prog="mnist-tfx",
      description="A TFX pipeline that turns raw MNIST into a quantized model for the Edge TPU.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
  _add_run_parser(commands)
  _add_tensorboard_parser(commands)
  kubeflow_cli.add_parser(commands)
  serving_cli.add_parser(commands)
  compare.add_parser(commands)
  return parser


def run_command(args: argparse.Namespace) -> int:
  # Imported here so that `--help` answers at once; TFX takes many seconds to import.
  from mnist_tfx import local_runner
  from mnist_tfx import summary
  from pipeline import pipeline as pipeline_def
  data_dir = args.data_dir
  if args.download:
    from components.mnist_example_gen import download  # Only users with network need it.
    data_dir = download.fetch_mnist(args.download_cache)
  pipeline_root = options.absolute_local_path(args.pipeline_root)
  pipeline = pipeline_def.create_pipeline(
      pipeline_root=pipeline_root,
      data_dir=data_dir,
      pipeline_name=args.pipeline_name,
      metadata_connection_config=local_runner.metadata_config(pipeline_root),
      beam_pipeline_args=args.beam_args or local_runner.default_beam_args(),
      enable_cache=not args.no_cache,
      **options.pipeline_options(args),
  )
  try:
    local_runner.run(pipeline)
  finally:
    print(summary.render(local_runner.metadata_config(pipeline_root), args.pipeline_name,
                         pipeline_root, local_runner.metadata_path(pipeline_root)))
  return 0


def tensorboard_command(args: argparse.Namespace) -> int:
  from mnist_tfx import local_runner
  from mnist_tfx import tensorboard
  pipeline_root = options.absolute_local_path(args.pipeline_root)
  logdirs = tensorboard.find_logdirs(local_runner.metadata_config(pipeline_root),
                                     args.pipeline_name)
  # A SIGTERM stops the server like Ctrl-C does, so the links' directory is removed either way.
  signal.signal(signal.SIGTERM, signal.default_int_handler)
  with tempfile.TemporaryDirectory(prefix="mnist-tfx-tensorboard-") as serve_dir:
    url = tensorboard.start(logdirs, args.host, args.port, serve_dir)
    for name, path in logdirs.items():
      print(f"{name}: {path}")
    print(f"TensorBoard at {url} (Ctrl-C to stop)", flush=True)
    try:
      while True:
        time.sleep(3600)
    except KeyboardInterrupt:
      return 0


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  _quiet_libraries()
  from absl import logging
  logging.set_verbosity(logging.INFO)
  return args.func(args)


if __name__ == "__main__":
  sys.exit(main())
