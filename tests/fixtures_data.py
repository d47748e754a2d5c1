"""Data fixtures: real slices of MNIST, as IDX files and as the Examples MnistExampleGen writes."""

import pytest
from tfx.types import standard_artifacts

from components.mnist_example_gen import constants
from components.mnist_example_gen import executor
from tests import mnist_slices

SLICE_TRAIN = 2000
SLICE_EVAL = 500


@pytest.fixture(scope="session")
def mnist_slice_dir(tmp_path_factory) -> str:
  """The first 2,000 training and 500 test images of MNIST as the four standard IDX files."""
  return mnist_slices.write_slice(str(tmp_path_factory.mktemp("mnist_slice")), SLICE_TRAIN,
                                  SLICE_EVAL)


@pytest.fixture(scope="session")
def examples_artifact(mnist_slice_dir, tmp_path_factory) -> standard_artifacts.Examples:
  """The Examples artifact MnistExampleGen's executor writes from `mnist_slice_dir`."""
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path_factory.mktemp("examples"))
  executor.Executor().Do({}, {constants.EXAMPLES_KEY: [examples]},
                         {constants.INPUT_DIR_KEY: mnist_slice_dir})
  return examples


@pytest.fixture(scope="session")
def examples_dir(examples_artifact) -> str:
  """The slice as an Examples artifact directory: Split-train/ and Split-eval/ of gzipped
  TFRecords of tf.Example (train = the 2,000 training images, eval = the 500 test images, each
  in source order when the shard files are read in name order)."""
  return examples_artifact.uri
