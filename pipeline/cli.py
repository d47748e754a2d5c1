"""`mnist-tfx`: run the pipeline locally and look at what it produced."""

import argparse
import os
import pathlib
import sys
import warnings
from typing import List, Optional

# TensorFlow, TFX and the Google Cloud clients they import print pages of start-up notices; keep
# the log to what the pipeline says (also in Beam's worker processes, which inherit the variables).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from pipeline import PIPELINE_NAME
BUNDLED_DATA_DIR = str(pathlib.Path(__file__).resolve().parent.parent / "data" / "mnist")
DEFAULT_OUTPUT_DIR = "output"
DEFAULT_DOWNLOAD_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mnist-edgetpu-tfx")


def _add_output_dir(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
      "--output-dir", default=DEFAULT_OUTPUT_DIR,
      help="Where the run keeps everything: pipeline artifacts under OUTPUT_DIR/pipeline, the ML "
      "Metadata SQLite database OUTPUT_DIR/metadata.sqlite, pushed models under "
      "OUTPUT_DIR/edgetpu_models (default: ./%(default)s).")
  parser.add_argument("--pipeline-name", default=PIPELINE_NAME,
                      help="The pipeline's name in ML Metadata (default: %(default)s).")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="mnist-tfx",
      description="A TFX pipeline that turns raw MNIST into a quantized model for the Edge TPU.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

  run = commands.add_parser(
      "run", help="Run the pipeline locally (LocalDagRunner on Apache Beam).",
      description="Run the whole pipeline with TFX's LocalDagRunner and print a summary. Components "
      "whose inputs and parameters did not change are served from the cache.")
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
  _add_output_dir(run)
  run.add_argument(
      "--beam-arg", action="append", dest="beam_args", metavar="ARG",
      help="A Beam pipeline option, repeatable, e.g. --beam-arg=--runner=FlinkRunner. Default: "
      "the multi-processing DirectRunner with one worker per core.")
  run.add_argument("--allow-anomalies", action="store_true",
                   help="Train even when data validation finds anomalies (they are still logged).")
  run.add_argument("--no-cache", action="store_true",
                   help="Run every component again instead of reusing cached outputs.")

  return parser


def run_command(args: argparse.Namespace) -> int:
  # Imported here so that `--help` answers at once; TFX takes many seconds to import.
  from pipeline import local_runner, pipeline as pipeline_def, summary
  data_dir = args.data_dir
  if args.download:
    from components.mnist_example_gen import download  # Only users with network need it.
    data_dir = download.fetch_mnist(args.download_cache)
  output_dir = os.path.abspath(args.output_dir)
  pipeline = pipeline_def.create_pipeline(
      pipeline_root=local_runner.pipeline_root(output_dir),
      data_dir=data_dir,
      pipeline_name=args.pipeline_name,
      metadata_connection_config=local_runner.metadata_config(output_dir),
      beam_pipeline_args=args.beam_args or local_runner.default_beam_args(),
      allow_anomalies=args.allow_anomalies,
      enable_cache=not args.no_cache,
  )
  try:
    local_runner.run(pipeline)
  finally:
    print(summary.render(local_runner.metadata_config(output_dir), args.pipeline_name,
                         local_runner.metadata_path(output_dir)))
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  from absl import logging
  logging.set_verbosity(logging.INFO)
  if args.command == "run":
    return run_command(args)
  raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
  sys.exit(main())
