"""Data fixtures: small real slices of MNIST, as IDX files and as an Examples artifact."""

import os

import pytest
import tensorflow as tf

from components import features
from tests import mnist_slices

SLICE_TRAIN = 2000
SLICE_EVAL = 500


@pytest.fixture(scope="session")
def mnist_slice_dir(tmp_path_factory) -> str:
  """The first 2,000 training and 500 test images of MNIST as the four standard IDX files."""
  return mnist_slices.write_slice(str(tmp_path_factory.mktemp("mnist_slice")), SLICE_TRAIN,
                                  SLICE_EVAL)


@pytest.fixture(scope="session")
def examples_dir(tmp_path_factory) -> str:
  """A directory laid out like a TFX Examples artifact (Split-train, Split-eval) on the slice."""
  root = str(tmp_path_factory.mktemp("examples"))
  for split, count in ((features.TRAIN_SPLIT, SLICE_TRAIN), (features.EVAL_SPLIT, SLICE_EVAL)):
    images, labels = mnist_slices.load_full(split)
    split_dir = os.path.join(root, f"Split-{split}")
    os.makedirs(split_dir)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"),
                              options) as writer:
      for image, label in zip(images[:count], labels[:count]):
        writer.write(features.to_tf_example(image, label).SerializeToString())
  return root
