"""The pipeline's settings as command-line options: one definition for every runner's command.

`mnist-tfx run` (the local runner) and `mnist-tfx kubeflow compile|submit` (the Kubeflow runner)
take the same pipeline options from here, so a run moves to Kubeflow with the same flags. Defaults
come from where each concept is defined (pipeline/configs.py, core/paths.py, the blessing rule,
the pusher's constants, the trainer's HParams), so `--help` shows them instead of copied literals.
Nothing here imports TensorFlow or TFX: `--help` answers at once.
"""

import argparse
import dataclasses
import json
import os
from typing import Any, Dict, Tuple

from components.evaluator import blessing as blessing_lib
from components.pusher import constants as pusher_constants
from core import paths
from pipeline import configs
from trainer_module import hparams as hparams_lib


def key_value(text: str) -> Tuple[str, Any]:
  """Parses KEY=VALUE; VALUE is JSON when it parses as JSON, else the plain string."""
  key, sep, value = text.partition("=")
  if not sep or not key:
    raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
  try:
    return key, json.loads(value)
  except json.JSONDecodeError:
    return key, value


def pipeline_name(text: str) -> str:
  """An argparse type: a pipeline name that follows configs.PIPELINE_NAME_RULE."""
  try:
    return configs.check_pipeline_name(text)
  except ValueError as e:
    raise argparse.ArgumentTypeError(str(e)) from e


def positive_int(text: str) -> int:
  """An argparse type: an integer of at least 1."""
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
  return value


def add_pipeline_root(parser: argparse.ArgumentParser) -> None:
  """--pipeline-root and --pipeline-name, as `run`, `tensorboard` and the report read them."""
  parser.add_argument(
      "--pipeline-root", default=paths.DEFAULT_PIPELINE_ROOT,
      help="Where the run keeps everything: each component's artifacts, the ML Metadata SQLite "
      "database PIPELINE_ROOT/metadata.sqlite and, unless --push-destination says otherwise, the "
      f"pushed models PIPELINE_ROOT/{paths.PUSHED_MODELS_DIR} (default: ./%(default)s).")
  parser.add_argument("--pipeline-name", default=configs.PIPELINE_NAME, type=pipeline_name,
                      help="The pipeline's name in ML Metadata, following "
                      f"{configs.PIPELINE_NAME_RULE} as Kubeflow requires "
                      "(default: %(default)s).")


def add_beam_args(parser: argparse.ArgumentParser, default_help: str) -> None:
  parser.add_argument(
      "--beam-arg", action="append", dest="beam_args", metavar="ARG",
      help=f"A Beam pipeline option for the Beam-based components, repeatable, e.g. "
      f"--beam-arg=--runner=FlinkRunner. {default_help}")


def _hparams_help() -> str:
  defaults = hparams_lib.HParams()
  return ", ".join(f"{field.name}={getattr(defaults, field.name)!r}"
                   for field in dataclasses.fields(hparams_lib.HParams)
                   if field.name != hparams_lib.CODE_FINGERPRINT_KEY) + (
                       f"; {hparams_lib.PRESET_KEY}=NAME first applies one of "
                       f"{', '.join(sorted(hparams_lib.PRESETS))}")


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
  """The pipeline's settings, the same for a local run and a Kubeflow compilation."""
  parser.add_argument("--allow-anomalies", action="store_true",
                      help="Train even when data validation finds anomalies (they are still "
                      "logged).")
  training = parser.add_argument_group("training")
  training.add_argument(
      "--trainer", default=configs.DEFAULT_TRAINER, choices=sorted(configs.TRAINER_RUN_FNS),
      help=f"{configs.HAND_BUILT_TRAINER}: the quantization-aware CNN written with tf.Module and "
      f"tf.nn (what ships); {configs.KERAS_BASELINE_TRAINER}: the seed's Keras example, for "
      "comparison (default: %(default)s).")
  training.add_argument("--epochs", type=positive_int,
                        help="Training epochs, at least 1 (default: the trainer's).")
  training.add_argument(
      "--train-config", action="append", default=[], metavar="KEY=VALUE", type=key_value,
      help="A trainer hyperparameter, repeatable; VALUE is JSON or a plain string, e.g. "
      "--train-config model=mlp --train-config learning_rate=0.001. Unknown keys are rejected. "
      f"The hand-built trainer's keys and defaults: {_hparams_help()}.")

  evaluation = parser.add_argument_group("evaluation (the int8 TFLite model is what is judged)")
  evaluation.add_argument(
      "--min-int8-accuracy", type=float, default=blessing_lib.DEFAULT_MIN_INT8_ACCURACY,
      help="Bless only at or above this int8 accuracy, a fraction (default: %(default)s).")
  evaluation.add_argument(
      "--max-quantization-drop", type=float, default=blessing_lib.DEFAULT_MAX_QUANTIZATION_DROP,
      help="Bless only if float minus int8 accuracy is at most this fraction "
      "(default: %(default)s).")
  evaluation.add_argument(
      "--baseline-tolerance", type=float, default=blessing_lib.DEFAULT_BASELINE_TOLERANCE,
      help="Bless only if int8 accuracy is at most this fraction below the deployed model's "
      "(default: %(default)s).")

  push = parser.add_argument_group("push")
  push.add_argument("--push-destination",
                    help="Directory (any TFX filesystem path) receiving versions 1, 2, ... of the "
                    "Edge TPU model; its newest verified version is the evaluator's baseline "
                    f"(default: PIPELINE_ROOT/{paths.PUSHED_MODELS_DIR}).")
  push.add_argument("--edgetpu-compiler", dest="compiler_path",
                    help="The edgetpu_compiler to run (default: the one on PATH; when there is "
                    "none, the CPU int8 model is pushed and the summary says so).")
  push.add_argument("--compiler-flag", action="append", dest="compiler_flags",
                    default=list(pusher_constants.DEFAULT_COMPILER_FLAGS), metavar="FLAG",
                    help="An extra edgetpu_compiler flag, repeatable; write flags that start "
                    "with a dash with '=', e.g. --compiler-flag=-m --compiler-flag=13.")
  push.add_argument("--compiler-timeout", type=int, dest="compiler_timeout_seconds",
                    default=pusher_constants.DEFAULT_COMPILER_TIMEOUT_SECONDS, metavar="SECONDS",
                    help="Kill edgetpu_compiler and fail the push after this many seconds "
                    "(default: %(default)s).")
  push.add_argument("--require-edgetpu", action=argparse.BooleanOptionalAction,
                    default=pusher_constants.DEFAULT_REQUIRE_EDGETPU,
                    help="Fail the push instead of pushing a CPU-only model when no Edge TPU "
                    "binary can be produced.")
  push.add_argument("--require-full-edgetpu-mapping", action=argparse.BooleanOptionalAction,
                    default=pusher_constants.DEFAULT_REQUIRE_FULL_EDGETPU_MAPPING,
                    help="Fail the push when some operations would run on the CPU instead of the "
                    "Edge TPU.")


def pipeline_options(args: argparse.Namespace) -> Dict[str, Any]:
  """`create_pipeline` keyword arguments from the options of `add_pipeline_options`."""
  train_config = dict(args.train_config)
  if args.epochs is not None:
    train_config["epochs"] = args.epochs
  return {
      "allow_anomalies": args.allow_anomalies,
      "trainer": args.trainer,
      "train_config": train_config,
      "min_int8_accuracy": args.min_int8_accuracy,
      "max_quantization_drop": args.max_quantization_drop,
      "baseline_tolerance": args.baseline_tolerance,
      "push_destination": args.push_destination,
      "compiler_path": args.compiler_path,
      "compiler_flags": args.compiler_flags,
      "compiler_timeout_seconds": args.compiler_timeout_seconds,
      "require_edgetpu": args.require_edgetpu,
      "require_full_edgetpu_mapping": args.require_full_edgetpu_mapping,
  }


def absolute_local_path(path: str) -> str:
  """A local path made absolute; URIs such as gs://bucket/dir are returned unchanged."""
  return path if "://" in path else os.path.abspath(path)
