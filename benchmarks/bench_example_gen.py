"""MnistExampleGen benchmark: the executor on the full MNIST (70,000 images), per Beam mode.

Times Executor.Do end to end (validation of the four files including SHA256SUMS, the Beam
pipeline, writing every shard) with the DirectRunner in-process and with multi-processing on all
cores (the pipeline's default Beam args). Prints a Markdown section for BENCHMARKS.md.

  .venv/bin/python -m benchmarks.bench_example_gen [--repeats 2] [--input_dir data/mnist]
"""

import argparse
import datetime
import os
import resource
import shutil
import sys
import tempfile
import time
from typing import Tuple

from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts

from components.mnist_example_gen import constants
from components.mnist_example_gen import executor
from components.mnist_example_gen import idx
from core import machine
from core import paths

MODES = {
    "in-process (DirectRunner default)": [],
    "multi-processing, all cores": ["--direct_running_mode=multi_processing",
                                    "--direct_num_workers=0"],
}


def cpu_seconds() -> float:
  """CPU time of this process and of its finished children (the Beam worker processes)."""
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  return time.process_time() + children.ru_utime + children.ru_stime


def run_once(input_dir: str, beam_args, work_dir: str) -> Tuple[float, float]:
  """Runs the executor into a fresh directory; returns (wall, CPU) seconds."""
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(work_dir, "examples")
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_args, tmp_dir=os.path.join(work_dir, "tmp"), unique_id="bench")
  start, start_cpu = time.perf_counter(), cpu_seconds()
  executor.Executor(context).Do({}, {constants.EXAMPLES_KEY: [examples]},
                                {constants.INPUT_DIR_KEY: input_dir})
  elapsed, elapsed_cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
  shutil.rmtree(work_dir)
  return elapsed, elapsed_cpu


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--input_dir", default=paths.bundled_data_dir())
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()

  machine_before = machine.describe()
  start = time.perf_counter()
  sources = idx.validate_input_dir(args.input_dir)
  validation_seconds = time.perf_counter() - start
  num_examples = sum(source.num_examples for source in sources.values())

  bytecode_cache = "off" if sys.dont_write_bytecode else "on"
  num_shards = sum(constants.DEFAULT_NUM_SHARDS.values())
  rows = []
  for mode, beam_args in MODES.items():
    runs = [run_once(args.input_dir, beam_args, tempfile.mkdtemp(prefix="bench_example_gen_"))
            for _ in range(args.repeats)]
    best, best_cpu = min(runs)
    rows.append(f"| {mode} | {best:.1f} s | {', '.join(f'{t:.1f}' for t, _ in runs)} | "
                f"{num_examples / best:,.0f} | {best_cpu:.1f} s |")

  print(f"""## MnistExampleGen

Measured {datetime.date.today()} on {machine_before.line()} (before the run), bytecode cache
{bytecode_cache}
(multi-processing workers import Beam and TensorFlow afresh);
`.venv/bin/python -m benchmarks.bench_example_gen --repeats {args.repeats}`.
Executor.Do end to end on the full MNIST ({num_examples:,} images: validation with SHA256SUMS,
Beam pipeline, {num_shards} gzipped TFRecord shards). Validation alone: {validation_seconds:.1f} s.

| Beam mode | best wall time | all runs (s) | examples/s (best) | CPU time (best run) |
|---|---|---|---|---|
""" + "\n".join(rows))


if __name__ == "__main__":
  main()
