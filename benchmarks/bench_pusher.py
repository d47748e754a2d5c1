"""EdgeTpuPusher benchmark: where a push spends its time, with and without a (stand-in) compiler.

Gets a model (trains the QAT CNN 1 epoch on a 2,000-image slice through MnistExampleGen's executor
and the trainer's API, or takes --model_dir), then times: the shared int8 conversion, the Edge TPU
compatibility check, the versioned atomic publish alone, and whole EdgeTpuPusher executor runs
without a compiler (CPU int8 push) and with the test stand-in `edgetpu_compiler` (which rewrites the
model into the compiled layout with no Edge TPU code: it measures the subprocess, log and package
handling, not a real compilation). Prints a Markdown section for BENCHMARKS.md.

  .venv/bin/python -m benchmarks.bench_pusher [--pushes 5] [--model_dir SAVED_MODEL] [--work_dir D]
"""

import argparse
import datetime
import hashlib
import os
import shutil
import statistics
import tempfile
import time

from tfx.components.evaluator import constants as tfx_evaluator_constants
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from components.evaluator import constants as evaluator_constants
from components.mnist_example_gen import constants as example_gen_constants
from components.mnist_example_gen import executor as example_gen_executor
from components.pusher import constants as pusher_constants
from components.pusher import edgetpu_compatibility
from components.pusher import executor as pusher_executor
from components.pusher import versioned_push
from components.pusher.testdata import standins
from core import contract
from core import int8_tflite
from core import machine
from tests import mnist_slices
from trainer_module import train

SLICE_TRAIN, SLICE_EVAL = 2000, 500
CHECK_REPEATS = 200


def train_slice_model(work_dir: str, model_uri: str) -> str:
  idx_dir = mnist_slices.write_slice(os.path.join(work_dir, "idx"), SLICE_TRAIN, SLICE_EVAL)
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(work_dir, "examples")
  example_gen_executor.Executor().Do({}, {example_gen_constants.EXAMPLES_KEY: [examples]},
                                     {example_gen_constants.INPUT_DIR_KEY: idx_dir})
  train.train_and_export(
      train_files=[os.path.join(artifact_utils.get_split_uri([examples], contract.TRAIN_SPLIT),
                                "*")],
      eval_files=[os.path.join(artifact_utils.get_split_uri([examples], contract.EVAL_SPLIT),
                               "*")],
      serving_model_dir=path_utils.serving_model_dir(model_uri),
      model_run_dir=os.path.join(work_dir, "model_run"), hparams={"epochs": 1, "batch_size": 32})
  return f"the QAT CNN trained 1 epoch on a {SLICE_TRAIN:,}-image slice"


def timed(function, repeats: int):
  """(median seconds, last result) over `repeats` calls."""
  seconds, result = [], None
  for _ in range(repeats):
    start = time.perf_counter()
    result = function()
    seconds.append(time.perf_counter() - start)
  return statistics.median(seconds), result


def push_once(work_dir: str, model_uri: str, sha256: str, destination: str, run: int) -> None:
  model = standard_artifacts.Model()
  model.uri = model_uri
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = os.path.join(work_dir, "blessing")
  blessing.set_int_custom_property(tfx_evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY, 1)
  blessing.set_string_custom_property(evaluator_constants.TFLITE_SHA256_PROPERTY, sha256)
  pushed_model = standard_artifacts.PushedModel()
  pushed_model.uri = os.path.join(work_dir, "pushed", str(run))
  pusher_executor.Executor().Do(
      {standard_component_specs.MODEL_KEY: [model],
       standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
      {standard_component_specs.PUSHED_MODEL_KEY: [pushed_model]},
      {pusher_constants.PUSH_DESTINATION_KEY: destination})


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pushes", type=int, default=5)
  parser.add_argument("--model_dir", help="an exported SavedModel to push instead of training")
  parser.add_argument("--work_dir", help="keep the data and outputs here (default: a temp dir)")
  args = parser.parse_args()
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_pusher_")
  os.makedirs(work_dir, exist_ok=True)
  model_uri = os.path.join(work_dir, "model")
  if args.model_dir:
    shutil.copytree(args.model_dir, path_utils.serving_model_dir(model_uri))
    model_source = "a given SavedModel"
  else:
    model_source = train_slice_model(work_dir, model_uri)

  machine_before = machine.describe()
  convert_seconds, model_content = timed(
      lambda: int8_tflite.convert_to_int8_tflite(path_utils.serving_model_path(model_uri)), 3)
  sha256 = hashlib.sha256(model_content).hexdigest()
  check_seconds, report = timed(
      lambda: edgetpu_compatibility.check_edgetpu_compatibility(model_content), CHECK_REPEATS)
  publish_destination = os.path.join(work_dir, "publish_only")
  publish_seconds, _ = timed(lambda: versioned_push.publish_version(
      publish_destination, {"model.tflite": model_content}, "model.json", lambda v: b"{}"),
                             args.pushes)

  path = os.environ["PATH"]
  os.environ["PATH"] = "/usr/bin:/bin"  # No compiler: the CPU-only push.
  runs = iter(range(10**6))
  cpu_seconds, _ = timed(lambda: push_once(work_dir, model_uri, sha256,
                                           os.path.join(work_dir, "dest_cpu"), next(runs)),
                         args.pushes)
  bin_dir = os.path.join(work_dir, "standin_bin")
  standins.write_standin(bin_dir, "success")
  os.environ["PATH"] = f"{bin_dir}:/usr/bin:/bin"
  standin_seconds, _ = timed(lambda: push_once(work_dir, model_uri, sha256,
                                               os.path.join(work_dir, "dest_standin"), next(runs)),
                             args.pushes)
  os.environ["PATH"] = path

  print(f"""
## Pusher

{datetime.date.today().isoformat()}, {machine_before.line()} (before the run; the cores are shared \
with other jobs). \
`.venv/bin/python -m benchmarks.bench_pusher --pushes {args.pushes}`. Model: {model_source} \
({len(model_content):,} bytes int8, {report.operations_total} operators). Medians.

| measure | result |
| --- | --- |
| shared int8 conversion (`convert_to_int8_tflite`) | {convert_seconds:.2f} s |
| Edge TPU compatibility check (flatbuffer, {CHECK_REPEATS} runs) | {1000 * check_seconds:.2f} ms |
| versioned atomic publish alone (write, read back, rename) | {1000 * publish_seconds:.1f} ms |
| EdgeTpuPusher executor, no compiler (CPU int8 push) | {cpu_seconds:.2f} s |
| EdgeTpuPusher executor, test stand-in compiler (no Edge TPU code; not a real compilation) | {standin_seconds:.2f} s |

Compatibility: {report.summary()}. The conversion dominates a push; a real `edgetpu_compiler` run
was not measured (it cannot be installed on this machine).
""")


if __name__ == "__main__":
  main()
