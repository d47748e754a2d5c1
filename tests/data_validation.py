"""Data-validation fixtures: the real executors (MnistExampleGen, StatisticsGen, ExampleValidator)
on real MNIST slices, with the pipeline's schema, and the image shifts the skew check must catch.
"""

import os
import shutil
from typing import Callable

import numpy as np
import pytest
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from components.example_validator import executor as example_validator_executor
from components.mnist_example_gen import constants as example_gen_constants
from components.mnist_example_gen import executor as example_gen_executor
from components.mnist_example_gen import idx
from components.statistics_gen import executor as statistics_gen_executor
from pipeline import pipeline as pipeline_def
from tests import mnist_slices

# One in-process Beam worker: faster than spawning one per core for a slice.
_BEAM_ARGS = ["--direct_running_mode=in_memory"]

# Eval-split image shifts: every pixel inverted (the reported fault) and a milder one, 10% less
# contrast (pixel * 0.9). Measured on full MNIST train vs test, TFDV's Jensen-Shannon divergence on
# `image` is 1.1e-5 unshifted, 0.49 inverted and 0.10 at 90% contrast (see the README).
SHIFTS = {
    "unshifted": lambda images: images,
    "inverted": lambda images: 255 - images,
    "contrast_90": lambda images: np.round(images * 0.9).astype(np.uint8),
}


def write_shifted_slice(directory: str, shift: Callable[[np.ndarray], np.ndarray],
                        num_train: int = 2000, num_eval: int = 500) -> str:
  """The first images of MNIST's train and test files as IDX files, the eval images shifted."""
  mnist_slices.write_slice(directory, num_train, num_eval)
  path = os.path.join(directory, idx.EVAL_IMAGES + idx.GZIP_SUFFIX)
  mnist_slices.write_idx(path, shift(idx.read_images(path)), idx.IMAGES_MAGIC)
  return directory


def _context(tmp_dir: str) -> base_beam_executor.BaseBeamExecutor.Context:
  return base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=_BEAM_ARGS,
                                                     tmp_dir=tmp_dir, unique_id="1")


def schema_artifact(root: str) -> standard_artifacts.Schema:
  """The pipeline's curated schema as ImportSchemaGen publishes it."""
  schema = standard_artifacts.Schema()
  schema.uri = os.path.join(root, "schema")
  os.makedirs(schema.uri)
  shutil.copy(pipeline_def.SCHEMA_FILE, os.path.join(schema.uri, "schema.pbtxt"))
  return schema


def validate(data_dir: str, root: str):
  """Runs ExampleGen, StatisticsGen and ExampleValidator; returns (statistics, anomalies)."""
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(root, "examples")
  example_gen_executor.Executor(_context(os.path.join(root, "tmp"))).Do(
      {}, {example_gen_constants.EXAMPLES_KEY: [examples]},
      {example_gen_constants.INPUT_DIR_KEY: data_dir})
  schema = schema_artifact(root)
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri = os.path.join(root, "statistics")
  statistics_gen_executor.Executor(_context(os.path.join(root, "tmp"))).Do(
      {standard_component_specs.EXAMPLES_KEY: [examples],
       standard_component_specs.SCHEMA_KEY: [schema]},
      {standard_component_specs.STATISTICS_KEY: [statistics]}, {})
  anomalies = standard_artifacts.ExampleAnomalies()
  anomalies.uri = os.path.join(root, "anomalies")
  example_validator_executor.Executor(_context(os.path.join(root, "tmp"))).Do(
      {standard_component_specs.STATISTICS_KEY: [statistics],
       standard_component_specs.SCHEMA_KEY: [schema]},
      {standard_component_specs.ANOMALIES_KEY: [anomalies]}, {})
  return statistics, anomalies


@pytest.fixture(scope="session")
def validated_slices(tmp_path_factory):
  """{shift name: (statistics, anomalies)} for the 2,000/500 slice with each of SHIFTS."""
  results = {}
  for name, shift in SHIFTS.items():
    root = str(tmp_path_factory.mktemp(f"validated_{name}"))
    data_dir = write_shifted_slice(os.path.join(root, "data"), shift)
    results[name] = validate(data_dir, root)
  return results
