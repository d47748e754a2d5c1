"""MnistExampleGen executor: validates the four MNIST IDX files, then writes them as tf.Examples.

The Beam pipeline carries only shard descriptions (split, index, example range), never pixels:
each worker reads its range from the IDX files through fileio (decoding each file once per worker
process) and writes its shard itself. Shard i holds examples [i*n/k, (i+1)*n/k) in file order, so
the artifact is deterministic: reading the shards in name order yields the source order, on any
runner and any number of workers.
"""

import os
from typing import Any, Dict, List, NamedTuple, Optional
import uuid

from absl import logging
import apache_beam as beam
from apache_beam.utils import shared
import tensorflow as tf
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.mnist_example_gen import constants
from components.mnist_example_gen import idx
from core import errors
from core import features

# Shard files are named as Beam's WriteToTFRecord names them in TFX's own ExampleGen.
SHARD_NAME_TEMPLATE = write_split.DEFAULT_TF_RECORD_FILE_NAME + "-{index:05d}-of-{count:05d}.gz"
# Shards are written here first and renamed into Split-* only when complete, so a reader of a
# split directory never sees a partial file, even when a runner retries a bundle.
STAGING_DIR_NAME = ".staging"


class Shard(NamedTuple):
  """One output file: examples [start, end) of a split's IDX files."""
  split: str
  index: int
  count: int
  start: int
  end: int


def plan_shards(split: str, num_examples: int, num_shards: int) -> List[Shard]:
  """Cuts a split into `num_shards` contiguous ranges of (nearly) equal size."""
  num_shards = min(num_shards, num_examples)
  bounds = [i * num_examples // num_shards for i in range(num_shards + 1)]
  return [Shard(split, i, num_shards, bounds[i], bounds[i + 1]) for i in range(num_shards)]


class _DecodedSplit:
  """The decoded images and labels of a split; a class so Beam's Shared can weak-reference it."""

  def __init__(self, source: idx.SplitSource):
    self.images, self.labels = idx.read_pair(source.images_path, source.labels_path)
    if len(self.images) != source.num_examples:
      raise idx.IdxFormatError(
          source.images_path, f"holds {len(self.images)} images now, {source.num_examples} when "
          "validated; the input changed during the run")


class _WriteShard(beam.DoFn):
  """Reads a shard's examples from the IDX files and writes them as a gzipped TFRecord file."""

  def __init__(self, sources: Dict[str, idx.SplitSource], output_uri: str):
    self._sources = sources
    self._output_uri = output_uri
    self._shared = {split: shared.Shared() for split in sources}

  def _decoded(self, split: str) -> _DecodedSplit:
    return self._shared[split].acquire(lambda: _DecodedSplit(self._sources[split]))

  def process(self, shard: Shard) -> None:
    decoded = self._decoded(shard.split)
    staging_dir = os.path.join(self._output_uri, STAGING_DIR_NAME)
    split_dir = os.path.join(self._output_uri, f"Split-{shard.split}")
    fileio.makedirs(staging_dir)
    fileio.makedirs(split_dir)
    staging_path = os.path.join(staging_dir, f"{shard.split}-{shard.index}-{uuid.uuid4().hex}.gz")
    with tf.io.TFRecordWriter(staging_path, tf.io.TFRecordOptions(compression_type="GZIP")) as w:
      for image, label in zip(decoded.images[shard.start:shard.end],
                              decoded.labels[shard.start:shard.end], strict=True):
        # Deterministic map order, so the same input always gives byte-identical records.
        w.write(features.to_tf_example(image, label).SerializeToString(deterministic=True))
    final_path = os.path.join(split_dir,
                              SHARD_NAME_TEMPLATE.format(index=shard.index, count=shard.count))
    fileio.rename(staging_path, final_path, overwrite=True)


class DataChangedError(errors.PipelineInputError):
  """The input files differ from the fingerprint the cache key holds."""


def _check_fingerprint(input_dir: str, expected: Optional[str]) -> None:
  """Raises DataChangedError when `expected` (the fingerprint in the cache key) is set and the
  files no longer match it: Examples cached under that key must hold that data."""
  if not expected:
    return
  actual = idx.input_fingerprint(input_dir)
  if actual != expected:
    raise DataChangedError(
        f"{input_dir}: {', '.join(idx.changed_files(expected, actual))} changed after the input "
        "fingerprint was taken (when the pipeline was compiled for Kubeflow Pipelines): compile "
        "again, so that the cache key follows the new data")


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes the train and t10k IDX files of `input_dir` as the train and eval splits."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    """Validates all input, then writes Split-train and Split-eval of the `examples` artifact.

    Raises:
      idx.IdxFormatError: an input file is missing, corrupt, inconsistent or fails its checksum;
        raised before anything is written.
      DataChangedError: the files differ from the given `input_fingerprint`.
      ValueError: a shard count is not positive.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    input_dir = exec_properties[constants.INPUT_DIR_KEY]
    num_shards = {}
    for split, key in constants.NUM_SHARDS_KEYS.items():
      value = exec_properties.get(key)
      num_shards[split] = constants.DEFAULT_NUM_SHARDS[split] if value is None else int(value)
      if num_shards[split] < 1:
        raise ValueError(f"{key} must be at least 1, got {value}")

    logging.info("Validating the MNIST IDX files in %s", input_dir)
    _check_fingerprint(input_dir, exec_properties.get(constants.INPUT_FINGERPRINT_KEY))
    sources = idx.validate_input_dir(input_dir)
    examples = artifact_utils.get_single_instance(output_dict[constants.EXAMPLES_KEY])
    shards = [shard for split, source in sources.items()
              for shard in plan_shards(split, source.num_examples, num_shards[split])]

    with self._make_beam_pipeline() as pipeline:
      _ = (pipeline
           | "PlanShards" >> beam.Create(shards)
           | "WriteShards" >> beam.ParDo(_WriteShard(sources, examples.uri)))
    staging_dir = os.path.join(examples.uri, STAGING_DIR_NAME)
    if fileio.exists(staging_dir):  # Object stores have no empty directories: none may be left.
      fileio.rmtree(staging_dir)

    examples.split_names = artifact_utils.encode_split_names(list(sources))
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(
        examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
    for split, source in sources.items():
      examples.set_int_custom_property(constants.num_examples_property(split), source.num_examples)
      logging.info("Wrote %d %s examples from %s in %d shards", source.num_examples, split,
                   source.images_path, min(num_shards[split], source.num_examples))
