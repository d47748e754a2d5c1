"""Whole-pipeline wall time on the full MNIST, from raw IDX files to a pushed model.

Runs `mnist-tfx run` with default settings into a fresh pipeline root (no cache), then reads each
component's execution time from ML Metadata. Prints a Markdown table for BENCHMARKS.md.

  .venv/bin/python -m benchmarks.bench_pipeline [--pipeline-root DIR] [-- extra run options]
"""

import argparse
import os
import sys
import tempfile
import time

from ml_metadata import metadata_store

from components.pusher import constants as pusher_constants
from core import machine
from mnist_tfx import cli
from mnist_tfx import local_runner
from mnist_tfx import mlmd_queries
from pipeline import configs

FIRST_HALF = ("MnistExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
              "AnomaliesGate")


def component_spans(pipeline_root: str):
  """Component id -> (start, end) in seconds: its execution's registration and completion."""
  store = metadata_store.MetadataStore(local_runner.metadata_config(pipeline_root))
  spans = {}
  for context in store.get_contexts_by_type("node"):
    for execution in store.get_executions_by_context(context.id):
      spans[context.name.split(".", 1)[1]] = (execution.create_time_since_epoch / 1000,
                                              execution.last_update_time_since_epoch / 1000)
  return spans


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--pipeline-root", default=None, help="Default: a fresh temporary dir.")
  args, run_options = parser.parse_known_args()
  pipeline_root = args.pipeline_root or tempfile.mkdtemp(prefix="bench_pipeline_")
  machine_before = machine.describe()
  start = time.perf_counter()
  exit_code = cli.main(["run", "--pipeline-root", pipeline_root, "--no-cache", *run_options])
  if exit_code:
    sys.exit(exit_code)  # The console said why; no timings for a failed run.
  wall = time.perf_counter() - start

  spans = component_spans(pipeline_root)
  pushed = mlmd_queries.last_run_artifacts(local_runner.metadata_config(pipeline_root),
                                           configs.PIPELINE_NAME)["PushedModel"]
  version_dir = pushed.get_string_custom_property(pusher_constants.PUSHED_DESTINATION_KEY)
  print(f"\n{time.strftime('%Y-%m-%d')}, {machine_before.line()} (before the run); "
        f"`{' '.join(sys.argv)}`\n")
  print("| component | seconds |\n| --- | --- |")
  for node, (begin, end) in sorted(spans.items(), key=lambda item: item[1][0]):
    print(f"| {node} | {end - begin:.1f} |")
  first_half = [spans[node] for node in FIRST_HALF]
  print(f"| first half, ExampleGen start to AnomaliesGate end | "
        f"{max(e for _, e in first_half) - min(b for b, _ in first_half):.1f} |")
  print(f"| whole `mnist-tfx run` (wall, including start-up) | {wall:.1f} |")
  if version_dir:
    for name in sorted(os.listdir(version_dir)):
      print(f"pushed {name}: {os.path.getsize(os.path.join(version_dir, name)):,} bytes")


if __name__ == "__main__":
  main()
