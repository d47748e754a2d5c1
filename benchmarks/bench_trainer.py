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
  ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/bench_trainer.py --seeds 0,1,2
  .venv/bin/python benchmarks/bench_trainer.py --presets default,cnn_large --seeds 0
"""

import argparse
import json
import os
import platform
import re
import tempfile
import time

from absl import logging
from ai_edge_litert.interpreter import Interpreter
import numpy as np
import tensorflow as tf

from components.mnist_example_gen import idx
from core import contract
from core import features
from core import int8_tflite
from trainer_module import hparams as hparams_lib
from trainer_module import model as model_lib
from trainer_module import train

THRESHOLDS = (0.990, 0.993, 0.994, 0.995)
MNIST_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                         "mnist")


def load_idx(split: str):
  """(uint8 images [N, 28, 28], uint8 labels [N]) of the bundled full MNIST split."""
  images_name, labels_name = ((idx.TRAIN_IMAGES, idx.TRAIN_LABELS) if split == "train" else
                              (idx.EVAL_IMAGES, idx.EVAL_LABELS))
  return idx.read_pair(os.path.join(MNIST_DIR, f"{images_name}.gz"),
                       os.path.join(MNIST_DIR, f"{labels_name}.gz"))


def machine_line() -> str:
  """CPU model, the AVX2/AVX-512/FMA flags, cores, the oneDNN ISA cap, and the load now."""
  with open("/proc/cpuinfo") as f:
    cpuinfo = f.read()
  model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
  mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", cpuinfo)
  flags = sorted(set(re.findall(r"\b(avx2|avx512f|fma)\b", cpuinfo)))
  isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "none")
  return (f"{model.group(1) if model else platform.processor()}, "
          f"{float(mhz.group(1)) / 1000 if mhz else 0:.2f} GHz, flags {' '.join(flags)}, "
          f"{os.cpu_count()} cores, ONEDNN_MAX_CPU_ISA={isa_cap}, load "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")


def peak_gflops() -> float:
  """Cores x GHz x FLOP per cycle: 2 FMA units x (8 floats AVX2 | 16 AVX-512) x 2 FLOP per FMA."""
  with open("/proc/cpuinfo") as f:
    cpuinfo = f.read()
  ghz = float(re.search(r"cpu MHz\s*:\s*([\d.]+)", cpuinfo).group(1)) / 1000
  avx512 = ("avx512f" in cpuinfo.split() and
            os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() not in ("AVX2", "AVX"))
  return (os.cpu_count() or 1) * ghz * 2 * (16 if avx512 else 8) * 2


def write_examples(root: str) -> None:
  """Writes the full MNIST as an Examples-artifact-like dir of gzipped TFRecords."""
  for split in (contract.TRAIN_SPLIT, contract.EVAL_SPLIT):
    split_dir = os.path.join(root, f"Split-{split}")
    os.makedirs(split_dir)
    images, labels = load_idx(split)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"),
                              options) as writer:
      for image, label in zip(images, labels, strict=True):
        writer.write(features.to_tf_example(image, label).SerializeToString())


def int8_accuracy(model_bytes: bytes, images: np.ndarray, labels: np.ndarray) -> float:
  """Accuracy of the int8 TFLite model on uint8 images [N, 28, 28] (int8 input = pixel - 128)."""
  interpreter = Interpreter(model_content=model_bytes)
  interpreter.allocate_tensors()
  (input_details,), (output_details,) = (interpreter.get_input_details(),
                                         interpreter.get_output_details())
  scale, zero_point = input_details["quantization"]
  scaled = features.to_images(images.reshape(len(images), -1)).numpy()
  quantized = np.clip(np.round(scaled / scale) + zero_point, -128, 127).astype(np.int8)
  correct = 0
  for image, label in zip(quantized, labels, strict=True):
    interpreter.set_tensor(input_details["index"], image[np.newaxis])
    interpreter.invoke()
    correct += int(np.argmax(interpreter.get_tensor(output_details["index"])[0]) == label)
  return correct / len(labels)


def run_one(preset: str, seed: int, overrides, examples: str, work_dir: str):
  hp = hparams_lib.HParams.from_config({"preset": preset, "seed": seed, **overrides})
  run_dir = tempfile.mkdtemp(dir=work_dir)
  load_before = os.getloadavg()[0]
  start = time.perf_counter()
  result = train.train_and_export(
      [os.path.join(examples, "Split-train", "*")], [os.path.join(examples, "Split-eval", "*")],
      os.path.join(run_dir, "serving_model"), os.path.join(run_dir, "model_run"), hp)
  wall = time.perf_counter() - start
  images, labels = load_idx(contract.EVAL_SPLIT)
  int8 = int8_accuracy(int8_tflite.convert_to_int8_tflite(os.path.join(run_dir, "serving_model")),
                       images, labels)
  flop = model_lib.training_flop(hp, 60000)
  return {"preset": preset, "seed": seed, "hp": hp, "int8": int8, "float": result.eval_accuracy,
          "wall": wall, "train_seconds": result.train_seconds, "history": result.eval_history,
          "flop": flop, "gflops": flop / result.train_seconds / 1e9, "load": load_before,
          "machine": machine_line()}


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
  parser.add_argument("--work_dir", default="", help="reuses its examples/ when present")
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_trainer_")
  examples = os.path.join(work_dir, "examples")
  if not os.path.exists(examples):
    write_examples(examples)

  runs = []
  for preset in args.presets.split(","):
    for seed in (int(s) for s in args.seeds.split(",")):
      runs.append(run_one(preset, seed, json.loads(args.config), examples, work_dir))
      run = runs[-1]
      print(f"{preset} seed {seed}: int8 {run['int8']:.2%}, float {run['float']:.2%}, "
            f"train {run['train_seconds']:.0f} s, {run['gflops']:.1f} GFLOP/s; "
            f"{run['machine']}", flush=True)

  lines = [f"Machine: {machine_line()}; peak {peak_gflops():.0f} GFLOP/s "
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
        f"{run['gflops']:.1f} ({run['gflops'] / peak_gflops():.0%}) | {run['load']:.1f} |")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
