"""Trainer benchmark on the full MNIST: time and compute to an int8 accuracy, per preset and seed.

Trains each preset (hparams.PRESETS; `default` is what ships) on all 60,000 training images with
the project's own training loop, converts the result with core.int8_tflite and scores the
int8 model on the 10,000 test images. Prints, with the machine line (CPU model, ISA flags, cores,
load) beside every figure, a Markdown section for BENCHMARKS.md:
  - time to accuracy: wall seconds and TFLOP until the per-epoch test accuracy (fake quant, which
    the int8 model matches) first reaches 99.0 / 99.3 / 99.4 / 99.5 %;
  - the final int8 and fake-quant accuracy of every seed;
  - achieved GFLOP/s (model.training_flop / training seconds) against the CPU's peak.

To approximate a 2-core AVX2-only machine on one with AVX-512, restrict oneDNN:
  ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python -m benchmarks.bench_trainer --seeds 0,1,2
  .venv/bin/python -m benchmarks.bench_trainer --presets default,cnn_large --seeds 0
"""

import argparse
import json
import os
import shutil
import tempfile
import time

from absl import logging
import numpy as np
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.mnist_example_gen import constants as example_gen_constants
from components.mnist_example_gen import executor as example_gen_executor
from core import contract
from core import int8_runtime
from core import int8_tflite
from core import machine
from core import paths
from trainer_module import data
from trainer_module import hparams as hparams_lib
from trainer_module import model as model_lib
from trainer_module import train

THRESHOLDS = (0.990, 0.993, 0.994, 0.995)


def write_examples(uri: str) -> standard_artifacts.Examples:
  """The bundled full MNIST as the Examples artifact MnistExampleGen's executor writes."""
  examples = standard_artifacts.Examples()
  examples.uri = uri
  example_gen_executor.Executor().Do({}, {example_gen_constants.EXAMPLES_KEY: [examples]},
                                     {example_gen_constants.INPUT_DIR_KEY: paths.bundled_data_dir()})
  return examples


def split_files(examples: standard_artifacts.Examples, split: str):
  return [os.path.join(artifact_utils.get_split_uri([examples], split), "*")]


def int8_accuracy(model_bytes: bytes, pixels: np.ndarray, labels: np.ndarray) -> float:
  """Accuracy of the int8 TFLite model (core.int8_runtime) on uint8 pixels [N, 784]."""
  classifier = int8_runtime.Int8Classifier(model_bytes)
  return float(np.mean(np.argmax(classifier.predict_pixels(pixels), axis=1) == labels))


def run_one(preset: str, seed: int, overrides, examples: standard_artifacts.Examples,
            work_dir: str):
  hp = hparams_lib.HParams.from_config({"preset": preset, "seed": seed, **overrides})
  run_dir = tempfile.mkdtemp(dir=work_dir)
  machine_before = machine.describe()
  start = time.perf_counter()
  result = train.train_and_export(
      split_files(examples, contract.TRAIN_SPLIT), split_files(examples, contract.EVAL_SPLIT),
      os.path.join(run_dir, "serving_model"), os.path.join(run_dir, "model_run"), hp)
  wall = time.perf_counter() - start
  pixels, labels = data.load_split(split_files(examples, contract.EVAL_SPLIT))
  int8 = int8_accuracy(int8_tflite.convert_to_int8_tflite(os.path.join(run_dir, "serving_model")),
                       pixels, labels)
  flop = model_lib.training_flop(hp, 60000)
  return {"preset": preset, "seed": seed, "hp": hp, "int8": int8, "float": result.eval_accuracy,
          "wall": wall, "train_seconds": result.train_seconds, "history": result.eval_history,
          "flop": flop, "gflops": flop / result.train_seconds / 1e9,
          "load": machine_before.load_average[0] if machine_before.load_average else 0.0,
          "machine": machine_before.line()}


def time_to_accuracy(run, threshold):
  """(seconds, TFLOP) at the end of the first epoch whose test accuracy reached `threshold`."""
  for epoch, (seconds, accuracy) in enumerate(run["history"], start=1):
    if accuracy >= threshold:
      return seconds, run["flop"] * epoch / run["hp"].epochs / 1e12
  return None


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--presets", default="default",
                      help=f"comma-separated names from {sorted(hparams_lib.PRESETS)}")
  parser.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
  parser.add_argument("--config", default="{}", help="custom_config JSON applied to every run")
  parser.add_argument("--work_dir", default="", help="where the examples and models go")
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_trainer_")
  if os.path.exists(os.path.join(work_dir, "examples")):
    shutil.rmtree(os.path.join(work_dir, "examples"))
  examples = write_examples(os.path.join(work_dir, "examples"))

  runs = []
  for preset in args.presets.split(","):
    for seed in (int(s) for s in args.seeds.split(",")):
      runs.append(run_one(preset, seed, json.loads(args.config), examples, work_dir))
      run = runs[-1]
      print(f"{preset} seed {seed}: int8 {run['int8']:.2%}, float {run['float']:.2%}, "
            f"train {run['train_seconds']:.0f} s, {run['gflops']:.1f} GFLOP/s; "
            f"{run['machine']}", flush=True)

  described = machine.describe()
  lines = [f"Machine: {described.line()}; peak {described.peak_gflops or 0:.0f} GFLOP/s "
           "(cores x GHz x 2 FMA units x SIMD floats x 2).", "",
           "| preset, seed | MACs/image | epochs | TFLOP | " +
           " | ".join(f"to {t:.1%}: s / TFLOP" for t in THRESHOLDS) +
           " | int8 | fake quant | train s | GFLOP/s (% of peak) | load before |",
           "| --- " * (9 + len(THRESHOLDS)) + "|"]
  for run in runs:
    reached = [time_to_accuracy(run, t) for t in THRESHOLDS]
    lines.append(
        f"| {run['preset']}, {run['seed']} | {model_lib.forward_macs(run['hp']) / 1e6:.2f} M | "
        f"{run['hp'].epochs} | {run['flop'] / 1e12:.2f} | " +
        " | ".join(f"{r[0]:.0f} / {r[1]:.2f}" if r else "not reached" for r in reached) +
        f" | {run['int8']:.2%} | {run['float']:.2%} | {run['train_seconds']:.0f} | "
        f"{run['gflops']:.1f} ({run['gflops'] / (described.peak_gflops or 1):.0%}) | "
        f"{run['load']:.1f} |")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
