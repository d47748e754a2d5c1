"""Int8Evaluator benchmark on the full MNIST: evaluator wall time and int8 CPU inference speed.

Writes the full MNIST with MnistExampleGen's executor, trains the QAT CNN briefly with the
trainer's API (1 epoch by default: this measures the evaluator, not the model), runs the
Int8Evaluator executor on the 10,000-image eval split (DirectRunner), and times the int8 model with
core.int8_runtime: batched throughput (2 threads) and single-image latency (1 thread).
Prints a Markdown section for BENCHMARKS.md.

  .venv/bin/python -m benchmarks.bench_evaluator [--epochs 1] [--model_dir SAVED_MODEL] [--work_dir D]
"""

import argparse
import datetime
import json
import os
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from components.evaluator import blessing as blessing_lib
from components.evaluator import constants as evaluator_constants
from components.evaluator import executor as evaluator_executor
from components.mnist_example_gen import constants as example_gen_constants
from components.mnist_example_gen import executor as example_gen_executor
from core import contract
from core import evaluation_metrics
from core import features
from core import int8_runtime
from core import int8_tflite
from core import latency
from core import machine
from core import paths
from trainer_module import train

BATCH_SIZES = (64, 256, 1024)
REPEATS = 5


def write_examples(uri: str, mnist_dir: str = paths.bundled_data_dir()) -> standard_artifacts.Examples:
  examples = standard_artifacts.Examples()
  examples.uri = uri
  example_gen_executor.Executor().Do({}, {example_gen_constants.EXAMPLES_KEY: [examples]},
                                     {example_gen_constants.INPUT_DIR_KEY: mnist_dir})
  return examples


def split_pattern(examples: standard_artifacts.Examples, split: str) -> str:
  return os.path.join(artifact_utils.get_split_uri([examples], split), "*")


def run_evaluator(work_dir: str, examples: standard_artifacts.Examples, model_uri: str):
  model = standard_artifacts.Model()
  model.uri = model_uri
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = os.path.join(work_dir, "evaluation")
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = os.path.join(work_dir, "blessing")
  context = evaluator_executor.Executor.Context(tmp_dir=os.path.join(work_dir, "tmp"),
                                                unique_id="1")
  start = time.perf_counter()
  evaluator_executor.Executor(context).Do(
      {standard_component_specs.EXAMPLES_KEY: [examples],
       standard_component_specs.MODEL_KEY: [model]},
      {standard_component_specs.EVALUATION_KEY: [evaluation],
       standard_component_specs.BLESSING_KEY: [blessing]},
      {evaluator_constants.MIN_INT8_ACCURACY_KEY: blessing_lib.DEFAULT_MIN_INT8_ACCURACY,
       evaluator_constants.MAX_QUANTIZATION_DROP_KEY: blessing_lib.DEFAULT_MAX_QUANTIZATION_DROP,
       evaluator_constants.BASELINE_TOLERANCE_KEY: blessing_lib.DEFAULT_BASELINE_TOLERANCE,
       evaluator_constants.EVAL_SPLIT_KEY: contract.EVAL_SPLIT})
  seconds = time.perf_counter() - start
  with open(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME)) as f:
    return seconds, json.load(f)


def eval_pixels(examples: standard_artifacts.Examples):
  """Yields uint8 pixel batches of the eval split, in shard order."""
  files = sorted(tf.io.gfile.glob(split_pattern(examples, contract.EVAL_SPLIT)))
  for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1000):
    parsed = tf.io.parse_example(batch, features.FEATURE_SPEC)
    yield parsed[contract.IMAGE_KEY].numpy().astype(np.uint8)


def batched_throughput(model_bytes: bytes, pixels: np.ndarray, num_threads: int,
                       batch_size: int) -> float:
  """Best-of-REPEATS images/s over all of `pixels` in batches of `batch_size`."""
  classifier = int8_runtime.Int8Classifier(model_bytes, num_threads=num_threads)
  quantized = classifier.quantize_pixels(pixels)
  classifier.invoke_quantized(quantized[:batch_size])  # Resize and warm up outside the timing.
  best = 0.0
  for _ in range(REPEATS):
    start = time.perf_counter()
    for i in range(0, len(quantized), batch_size):
      classifier.invoke_quantized(quantized[i:i + batch_size])
    best = max(best, len(quantized) / (time.perf_counter() - start))
  return best


def single_image_latency_ms(model_bytes: bytes, pixels: np.ndarray):
  """(p50, p99) ms of one batch-1 call per image, 1 thread: core.latency, the evaluator's
  measurement and quantiles."""
  classifier = int8_runtime.Int8Classifier(model_bytes, num_threads=1)
  _, seconds = latency.time_single_images(classifier.invoke_quantized,
                                          classifier.quantize_pixels(pixels))
  quantiles = latency.quantiles_ms(seconds)
  return quantiles["p50"], quantiles["p99"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--epochs", type=int, default=1)
  parser.add_argument("--model_dir", help="an exported SavedModel to evaluate instead of training")
  parser.add_argument("--work_dir", help="keep the data and outputs here (default: a temp dir)")
  args = parser.parse_args()
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_evaluator_")
  os.makedirs(work_dir, exist_ok=True)

  start = time.perf_counter()
  examples = write_examples(os.path.join(work_dir, "examples"))
  print(f"examples written in {time.perf_counter() - start:.1f} s", flush=True)
  model_uri = os.path.join(work_dir, "model")
  training = "a given SavedModel"
  if args.model_dir:
    shutil.copytree(args.model_dir, path_utils.serving_model_dir(model_uri))
  else:
    result = train.train_and_export(
        train_files=[split_pattern(examples, contract.TRAIN_SPLIT)],
        eval_files=[split_pattern(examples, contract.EVAL_SPLIT)],
        serving_model_dir=path_utils.serving_model_dir(model_uri),
        model_run_dir=os.path.join(work_dir, "model_run"), hparams={"epochs": args.epochs})
    training = (f"the QAT CNN trained {args.epochs} epoch(s) on the 60,000 training images "
                f"({result.train_seconds:.0f} s; short on purpose, this benchmarks the evaluator)")
    print(f"trained: {result}", flush=True)

  machine_before = machine.describe()
  wall_seconds, metrics = run_evaluator(work_dir, examples, model_uri)
  model_bytes = int8_tflite.convert_to_int8_tflite(path_utils.serving_model_path(model_uri))
  pixels = np.concatenate(list(eval_pixels(examples)))
  throughput = {batch_size: batched_throughput(model_bytes, pixels, 2, batch_size)
                for batch_size in BATCH_SIZES}
  best_batch = max(throughput, key=throughput.get)
  one_thread = batched_throughput(model_bytes, pixels, 1, best_batch)
  p50_ms, p99_ms = single_image_latency_ms(model_bytes, pixels)
  load_after = machine.load_average()

  int8 = metrics["int8"]
  print(f"""
## Evaluator

{datetime.date.today().isoformat()}, {machine_before.line()} before the evaluator's run \
(the cores are shared with other jobs; load {' '.join(f'{v:.2f}' for v in load_after or ())} \
after). `.venv/bin/python -m benchmarks.bench_evaluator`. Model: {training}.

| measure | result | target |
| --- | --- | --- |
| Int8Evaluator executor wall time, {metrics['num_examples']:,} eval images (DirectRunner, float + int8 inference, conversion, TensorBoard) | {wall_seconds:.1f} s | |
| batched int8 throughput, 2 threads, best batch size ({best_batch}) | {throughput[best_batch]:,.0f} images/s | >= 25,000 |
| batched int8 throughput by batch size, 2 threads | {', '.join(f'{b}: {v:,.0f}' for b, v in throughput.items())} images/s | |
| batched int8 throughput, 1 thread, batch {best_batch} | {one_thread:,.0f} images/s | |
| single-image int8 latency, 1 thread, p50 / p99 | {p50_ms:.3f} / {p99_ms:.3f} ms | p50 <= 0.1 ms |
| as measured inside the evaluator run (metrics.json): batched ({int8['batch_size']}) / p50 / p99 | {int8['batched_images_per_second']:,.0f} images/s / {int8['latency_ms']['p50']:.3f} ms / {int8['latency_ms']['p99']:.3f} ms | |
| int8 accuracy / float accuracy / drop / agreement | {int8['accuracy']:.4f} / {metrics['float']['accuracy']:.4f} / {100 * metrics['quantization_accuracy_drop']:.2f} pp / {metrics['int8_float_agreement']:.4f} | |
| int8 model size | {int8['model_size_bytes']:,} bytes | |

Blessing at default thresholds: {metrics['reason']}
""")


if __name__ == "__main__":
  main()
