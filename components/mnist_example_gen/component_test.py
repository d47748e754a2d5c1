"""MnistExampleGen in a real LocalDagRunner pipeline, with MLMD recording what happened."""

import os
import shutil

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest
from tfx import v1 as tfx

from components.mnist_example_gen import component
from components.mnist_example_gen import constants
from components.mnist_example_gen import idx
from tests import mnist_slices

pytestmark = pytest.mark.integration  # Runs TFX pipelines or trains models.

Execution = metadata_store_pb2.Execution


def test_constructor_declares_parameters_and_examples_output():
  example_gen = component.MnistExampleGen(input_dir="gs://bucket/mnist", num_train_shards=4)

  assert example_gen.exec_properties[constants.INPUT_DIR_KEY] == "gs://bucket/mnist"
  assert example_gen.exec_properties[constants.NUM_TRAIN_SHARDS_KEY] == 4
  assert example_gen.outputs[constants.EXAMPLES_KEY].type_name == "Examples"


class PipelineRuns:
  """Runs a pipeline of just MnistExampleGen on `input_dir` and reads back its MLMD store."""

  def __init__(self, tmp_path, input_dir: str):
    self._root = str(tmp_path / "root")
    self._input_dir = input_dir
    self._config = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        str(tmp_path / "mlmd.sqlite"))

  def run(self) -> None:
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="example_gen_only", pipeline_root=self._root,
        components=[component.MnistExampleGen(input_dir=self._input_dir)],
        metadata_connection_config=self._config, enable_cache=True))

  def store(self) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(self._config)

  def execution_states(self):
    return [e.last_known_state for e in sorted(self.store().get_executions(), key=lambda e: e.id)]

  def live_examples(self):
    return [a for a in self.store().get_artifacts_by_type("Examples")
            if a.state == metadata_store_pb2.Artifact.LIVE]


def counts(artifact: metadata_store_pb2.Artifact):
  return {split: artifact.custom_properties[constants.num_examples_property(split)].int_value
          for split in idx.SPLIT_FILES}


def test_bad_input_fails_unpublished_then_fixed_and_changed_input_rerun(mnist_slice_dir, tmp_path):
  input_dir = shutil.copytree(mnist_slice_dir, str(tmp_path / "mnist"))
  mnist_slices.write_sha256sums(input_dir)
  eval_images = os.path.join(input_dir, idx.EVAL_IMAGES + idx.GZIP_SUFFIX)
  with open(eval_images, "rb") as f:
    good_bytes = f.read()
  mnist_slices.flip_pixel(eval_images)  # Valid IDX, but no longer what SHA256SUMS lists.
  runs = PipelineRuns(tmp_path, input_dir)

  with pytest.raises(Exception, match="SHA-256 mismatch") as raised:
    runs.run()
  assert eval_images in str(raised.value)
  assert runs.execution_states() == [Execution.FAILED]
  assert runs.live_examples() == []

  with open(eval_images, "wb") as f:
    f.write(good_bytes)
  runs.run()
  assert runs.execution_states() == [Execution.FAILED, Execution.COMPLETE]
  [examples] = runs.live_examples()
  expected = {split: len(idx.read_pair(*idx.split_paths(mnist_slice_dir, split))[1])
              for split in idx.SPLIT_FILES}
  assert counts(examples) == expected

  # Same directory, different data: the driver's fingerprint must defeat the cache.
  mnist_slices.write_slice(input_dir, expected["train"] // 2, expected["eval"] // 2)
  mnist_slices.write_sha256sums(input_dir)
  runs.run()
  assert runs.execution_states()[-1] == Execution.COMPLETE
  newest = max(runs.live_examples(), key=lambda a: a.id)
  assert counts(newest) == {split: count // 2 for split, count in expected.items()}

  runs.run()  # Unchanged data: the cached result is reused.
  assert runs.execution_states()[-1] == Execution.CACHED
