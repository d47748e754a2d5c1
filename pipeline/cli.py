"""`mnist-tfx`: run the pipeline locally and look at what it produced."""

import argparse
import json
import os
import pathlib
import sys
import time
import warnings
from typing import Any, Dict, List, Optional, Tuple

# TensorFlow, TFX and the Google Cloud clients they import print pages of start-up notices; keep
# the log to what the pipeline says (also in Beam's worker processes, which inherit the variables).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from components.evaluator import blessing as blessing_lib  # No TensorFlow: `--help` stays fast.
from pipeline import PIPELINE_NAME, TRAINER_RUN_FNS
BUNDLED_DATA_DIR = str(pathlib.Path(__file__).resolve().parent.parent / "data" / "mnist")
DEFAULT_PIPELINE_ROOT = "output"
DEFAULT_DOWNLOAD_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mnist-edgetpu-tfx")


def _add_pipeline_root(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
      "--pipeline-root", default=DEFAULT_PIPELINE_ROOT,
      help="Where the run keeps everything: each component's artifacts, the ML Metadata SQLite "
      "database PIPELINE_ROOT/metadata.sqlite and, unless --push-destination says otherwise, the "
      "pushed models (default: ./%(default)s).")
  parser.add_argument("--pipeline-name", default=PIPELINE_NAME,
                      help="The pipeline's name in ML Metadata (default: %(default)s).")


def _key_value(text: str) -> Tuple[str, Any]:
  key, sep, value = text.partition("=")
  if not sep or not key:
    raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
  try:
    return key, json.loads(value)
  except json.JSONDecodeError:
    return key, value


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
  """The pipeline's settings, the same for a local run and a Kubeflow compilation."""
  parser.add_argument("--allow-anomalies", action="store_true",
                      help="Train even when data validation finds anomalies (they are still "
                      "logged).")
  training = parser.add_argument_group("training")
  training.add_argument(
      "--trainer", default="hand-built", choices=sorted(TRAINER_RUN_FNS),
      help="hand-built: the quantization-aware CNN written with tf.Module and tf.nn (what ships); "
      "keras-baseline: the seed's Keras example, for comparison (default: %(default)s).")
  training.add_argument("--epochs", type=int, help="Training epochs (default: the trainer's).")
  training.add_argument(
      "--train-config", action="append", default=[], metavar="KEY=VALUE", type=_key_value,
      help="A trainer hyperparameter, repeatable; VALUE is JSON or a plain string, e.g. "
      "--train-config model=mlp --train-config learning_rate=0.001. Keys: model, epochs, "
      "batch_size, learning_rate, lr_schedule, quant_delay, seed, dropout, ... (unknown keys are "
      "rejected by the trainer).")

  evaluation = parser.add_argument_group("evaluation (the int8 TFLite model is what is judged)")
  evaluation.add_argument(
      "--min-int8-accuracy", type=float, default=blessing_lib.DEFAULT_MIN_INT8_ACCURACY,
      help="Bless only at or above this int8 accuracy (default: %(default)s).")
  evaluation.add_argument(
      "--max-quantization-drop", type=float, default=blessing_lib.DEFAULT_MAX_QUANTIZATION_DROP,
      help="Bless only if float minus int8 accuracy is at most this (default: %(default)s).")
  evaluation.add_argument(
      "--baseline-tolerance", type=float, default=blessing_lib.DEFAULT_BASELINE_TOLERANCE,
      help="Bless only if int8 accuracy is at most this much below the last blessed model's "
      "(default: %(default)s).")
  push = parser.add_argument_group("push")
  push.add_argument("--push-destination",
                    help="Directory (any TFX filesystem path) receiving versions 1, 2, ... of the "
                    "Edge TPU model (default: PIPELINE_ROOT/pushed_models).")
  push.add_argument("--edgetpu-compiler", dest="compiler_path",
                    help="The edgetpu_compiler to run (default: the one on PATH; when there is "
                    "none, the CPU int8 model is pushed and the summary says so).")
  push.add_argument("--compiler-flag", action="append", default=[], dest="compiler_flags",
                    metavar="FLAG", help="An extra edgetpu_compiler flag, repeatable.")
  push.add_argument("--require-edgetpu", action="store_true",
                    help="Fail the push instead of pushing a CPU-only model when no Edge TPU "
                    "binary can be produced.")
  push.add_argument("--allow-partial-edgetpu-mapping", action="store_true",
                    help="Push even if some operations would run on the CPU instead of the "
                    "Edge TPU.")


def _pipeline_options(args: argparse.Namespace) -> Dict[str, Any]:
  """`create_pipeline` keyword arguments from the options of `_add_pipeline_options`."""
  train_config = dict(args.train_config)
  if args.epochs is not None:
    train_config["epochs"] = args.epochs
  return dict(
      allow_anomalies=args.allow_anomalies,
      trainer=args.trainer,
      train_config=train_config,
      min_int8_accuracy=args.min_int8_accuracy,
      max_quantization_drop=args.max_quantization_drop,
      baseline_tolerance=args.baseline_tolerance,
      push_destination=args.push_destination,
      compiler_path=args.compiler_path,
      compiler_flags=args.compiler_flags,
      require_edgetpu=args.require_edgetpu,
      require_full_edgetpu_mapping=not args.allow_partial_edgetpu_mapping,
  )


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="mnist-tfx",
      description="A TFX pipeline that turns raw MNIST into a quantized model for the Edge TPU.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

  run = commands.add_parser(
      "run", help="Run the pipeline locally (LocalDagRunner on Apache Beam).",
      description="Run the whole pipeline with TFX's LocalDagRunner and print a summary. "
      "Components whose inputs and parameters did not change are served from the cache.")
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
  _add_pipeline_root(run)
  run.add_argument(
      "--beam-arg", action="append", dest="beam_args", metavar="ARG",
      help="A Beam pipeline option, repeatable, e.g. --beam-arg=--runner=FlinkRunner. Default: "
      "the multi-processing DirectRunner with one worker per core.")
  run.add_argument("--no-cache", action="store_true",
                   help="Run every component again instead of reusing cached outputs.")
  _add_pipeline_options(run)

  board = commands.add_parser(

      "tensorboard", help="Start TensorBoard on the latest training run and evaluation.",
      description="Looks up the newest Trainer run (scalars, quantization ranges, histograms, "
      "images, the graph with its FakeQuant ops) and the newest evaluation in the pipeline's ML "
      "Metadata and serves them with TensorBoard until interrupted (Ctrl-C).")
  _add_pipeline_root(board)
  board.add_argument("--host", default="127.0.0.1",
                     help="Address to listen on (default: %(default)s, this machine only; "
                     "0.0.0.0 for every interface).")
  board.add_argument("--port", type=int, default=6006,
                     help="Port (default: %(default)s; 0 picks a free one).")
  kfp = commands.add_parser(
      "kubeflow", help="Compile the pipeline into a Kubeflow Pipelines v2 job spec.",
      description="Writes OUTPUT_DIR/pipeline.json: the same pipeline, every component in IMAGE "
      "(built from kubeflow/Dockerfile). Submit it with the KFP client or UI, e.g. "
      "kfp.Client(host).create_run_from_pipeline_package('pipeline.json').")
  kfp.add_argument("--image", required=True, help="Container image for every component.")
  kfp.add_argument("--pipeline-root", required=True,
                   help="Artifact root the cluster can write, e.g. gs://bucket/mnist-edgetpu.")
  kfp.add_argument("--data-dir", required=True,
                   help="MNIST-format IDX files the cluster can read, e.g. gs://bucket/mnist.")
  kfp.add_argument("--output-dir", default=".", help="Where pipeline.json goes (default: .).")
  kfp.add_argument("--pipeline-name", default=PIPELINE_NAME,
                   help="The pipeline's name (default: %(default)s).")
  kfp.add_argument("--beam-arg", action="append", dest="beam_args", metavar="ARG",
                   help="A Beam option for the Beam-based components, repeatable, e.g. "
                   "--beam-arg=--runner=DataflowRunner --beam-arg=--project=P.")
  _add_pipeline_options(kfp)
  return parser


def run_command(args: argparse.Namespace) -> int:
  # Imported here so that `--help` answers at once; TFX takes many seconds to import.
  from pipeline import local_runner, pipeline as pipeline_def, summary
  data_dir = args.data_dir
  if args.download:
    from components.mnist_example_gen import download  # Only users with network need it.
    data_dir = download.fetch_mnist(args.download_cache)
  pipeline_root = os.path.abspath(args.pipeline_root)
  pipeline = pipeline_def.create_pipeline(
      pipeline_root=pipeline_root,
      data_dir=data_dir,
      pipeline_name=args.pipeline_name,
      metadata_connection_config=local_runner.metadata_config(pipeline_root),
      beam_pipeline_args=args.beam_args or local_runner.default_beam_args(),
      enable_cache=not args.no_cache,
      **_pipeline_options(args),
  )
  try:
    local_runner.run(pipeline)
  finally:
    print(summary.render(local_runner.metadata_config(pipeline_root), args.pipeline_name,
                         pipeline_root, local_runner.metadata_path(pipeline_root)))
  return 0


def tensorboard_command(args: argparse.Namespace) -> int:
  from pipeline import local_runner, tensorboard
  pipeline_root = os.path.abspath(args.pipeline_root)
  logdirs = tensorboard.find_logdirs(local_runner.metadata_config(pipeline_root),
                                     args.pipeline_name)
  url = tensorboard.start(logdirs, args.host, args.port)
  for name, path in logdirs.items():
    print(f"{name}: {path}")
  print(f"TensorBoard at {url} (Ctrl-C to stop)", flush=True)
  try:
    while True:
      time.sleep(3600)
  except KeyboardInterrupt:
    return 0


def kubeflow_command(args: argparse.Namespace) -> int:
  from kubeflow import runner
  runner.compile_pipeline(args.output_dir, image=args.image, pipeline_root=args.pipeline_root,
                          data_dir=args.data_dir, beam_pipeline_args=args.beam_args,
                          pipeline_name=args.pipeline_name, **_pipeline_options(args))
  print(f"Kubeflow Pipelines v2 job spec: {os.path.join(args.output_dir, runner.SPEC_FILE_NAME)}")
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  from absl import logging
  logging.set_verbosity(logging.INFO)
  if args.command == "run":
    return run_command(args)
  if args.command == "tensorboard":
    return tensorboard_command(args)
  if args.command == "kubeflow":
    return kubeflow_command(args)
  raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
  sys.exit(main())
