"""MnistExampleGen's executor on the real MNIST slice: what it writes, and what it refuses."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.mnist_example_gen import constants
from components.mnist_example_gen import executor
from components.mnist_example_gen import idx
from core import contract
from core import features
from tests import mnist_slices


def shard_files(examples_uri: str, split: str):
  return sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))


def read_records(examples_uri: str, split: str):
  """All serialized records of a split, shards read in name order."""
  dataset = tf.data.TFRecordDataset(shard_files(examples_uri, split), compression_type="GZIP")
  return [record.numpy() for record in dataset]


def run_executor(input_dir: str, output_dir: str, **exec_properties) -> standard_artifacts.Examples:
  examples = standard_artifacts.Examples()
  examples.uri = output_dir
  executor.Executor().Do({}, {constants.EXAMPLES_KEY: [examples]},
                         {constants.INPUT_DIR_KEY: input_dir, **exec_properties})
  return examples


def test_writes_every_source_example_in_order(examples_artifact, mnist_slice_dir):
  assert artifact_utils.decode_split_names(examples_artifact.split_names) == ["train", "eval"]
  assert examples_utils.get_payload_format_string(examples_artifact) == "FORMAT_TF_EXAMPLE"
  assert examples_utils.get_file_format(examples_artifact) == "tfrecords_gzip"
  assert sorted(os.listdir(examples_artifact.uri)) == ["Split-eval", "Split-train"]

  for split in idx.SPLIT_FILES:
    images, labels = idx.read_pair(*idx.split_paths(mnist_slice_dir, split))
    assert examples_artifact.get_int_custom_property(
        constants.num_examples_property(split)) == len(labels)
    num_shards = constants.DEFAULT_NUM_SHARDS[split]
    assert [os.path.basename(f) for f in shard_files(examples_artifact.uri, split)] == [
        f"data_tfrecord-{i:05d}-of-{num_shards:05d}.gz" for i in range(num_shards)]

    parsed = tf.io.parse_example(read_records(examples_artifact.uri, split), features.FEATURE_SPEC)

    np.testing.assert_array_equal(parsed[contract.IMAGE_KEY].numpy(),
                                  images.reshape(len(images), contract.NUM_PIXELS))
    np.testing.assert_array_equal(parsed[contract.LABEL_KEY].numpy(), labels)


def test_shard_counts_change_files_not_records(examples_artifact, mnist_slice_dir, tmp_path):
  examples = run_executor(mnist_slice_dir, str(tmp_path),
                          **{constants.NUM_TRAIN_SHARDS_KEY: 3, constants.NUM_EVAL_SHARDS_KEY: 1})

  assert [os.path.basename(f) for f in shard_files(examples.uri, "train")] == [
      f"data_tfrecord-{i:05d}-of-00003.gz" for i in range(3)]
  assert len(shard_files(examples.uri, "eval")) == 1
  for split in idx.SPLIT_FILES:
    # Byte-identical records in the same order: the output depends only on the input.
    assert read_records(examples.uri, split) == read_records(examples_artifact.uri, split)


def test_bad_input_fails_before_anything_is_written(mnist_slice_dir, tmp_path):
  input_dir = shutil.copytree(mnist_slice_dir, str(tmp_path / "mnist"))
  eval_labels = os.path.join(input_dir, idx.EVAL_LABELS + idx.GZIP_SUFFIX)
  os.remove(eval_labels)
  output_dir = tmp_path / "examples"
  output_dir.mkdir()

  with pytest.raises(idx.IdxFormatError, match="file not found") as raised:
    run_executor(input_dir, str(output_dir))

  assert raised.value.path == eval_labels
  assert list(output_dir.iterdir()) == []


def test_data_changed_since_its_fingerprint_was_taken_is_refused(mnist_slice_dir, tmp_path):
  """The fingerprint `mnist-tfx kubeflow compile` put into the cache key must still hold."""
  input_dir = shutil.copytree(mnist_slice_dir, str(tmp_path / "mnist"))
  compiled = idx.input_fingerprint(input_dir)
  mnist_slices.flip_pixel(os.path.join(input_dir, idx.EVAL_IMAGES + idx.GZIP_SUFFIX))
  output_dir = tmp_path / "examples"
  output_dir.mkdir()

  with pytest.raises(executor.DataChangedError,
                     match=f"{idx.EVAL_IMAGES + idx.GZIP_SUFFIX} changed after the input "
                     "fingerprint was taken .* compile again"):
    run_executor(input_dir, str(output_dir), **{constants.INPUT_FINGERPRINT_KEY: compiled})
  assert list(output_dir.iterdir()) == []

  examples = run_executor(input_dir, str(output_dir), **{
      constants.INPUT_FINGERPRINT_KEY: idx.input_fingerprint(input_dir)})
  assert sorted(os.listdir(examples.uri)) == ["Split-eval", "Split-train"]


def test_shard_count_must_be_positive(mnist_slice_dir, tmp_path):
  with pytest.raises(ValueError, match="num_eval_shards must be at least 1, got 0"):
    run_executor(mnist_slice_dir, str(tmp_path), **{constants.NUM_EVAL_SHARDS_KEY: 0})
  assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ingests_the_bundled_full_mnist(tmp_path):
  """All 70,000 images of data/mnist, checksums verified, every label where the source has it."""
  examples = run_executor(str(mnist_slices.FULL_MNIST_DIR), str(tmp_path))
  for split in idx.SPLIT_FILES:
    _, labels = idx.read_pair(*idx.split_paths(str(mnist_slices.FULL_MNIST_DIR), split))
    assert examples.get_int_custom_property(constants.num_examples_property(split)) == len(labels)
    parsed = tf.io.parse_example(read_records(examples.uri, split),
                                 {contract.LABEL_KEY: features.FEATURE_SPEC[contract.LABEL_KEY]})
    np.testing.assert_array_equal(parsed[contract.LABEL_KEY].numpy(), labels)
  assert (examples.get_int_custom_property(constants.num_examples_property("train")),
          examples.get_int_custom_property(constants.num_examples_property("eval"))) == (60000,
                                                                                        10000)
