"""MnistExampleGen: ingests the four MNIST IDX files as a standard Examples artifact."""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from components.mnist_example_gen import constants
from components.mnist_example_gen import driver
from components.mnist_example_gen import executor


class MnistExampleGenSpec(types.ComponentSpec):
  """Parameters: where the IDX files are and how many shards each split gets."""

  PARAMETERS = {
      constants.INPUT_DIR_KEY: ExecutionParameter(type=str),
      constants.NUM_TRAIN_SHARDS_KEY: ExecutionParameter(type=int, optional=True),
      constants.NUM_EVAL_SHARDS_KEY: ExecutionParameter(type=int, optional=True),
      constants.INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {}
  OUTPUTS = {
      constants.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }


class MnistExampleGen(base_beam_component.BaseBeamComponent):
  """Reads MNIST IDX files (gzipped or raw) from any fileio path and emits tf.Examples.

  The training file becomes split `train` (60,000 examples for full MNIST), the t10k file split
  `eval` (10,000); features follow `core.features.FEATURE_SPEC`. All input is validated
  (IDX format, sizes, labels, and SHA256SUMS when present) before anything is written; bad input
  fails the execution with an error naming the file, and no artifact is published. The driver
  fingerprints the input files' content, so a cached result is reused only for the same data
  (under LocalDagRunner; on Kubeflow, where custom drivers do not run, the fingerprint is computed
  when the pipeline is compiled and given as `input_fingerprint`; the executor then refuses data
  that changed since).

  Outputs: `examples` (standard Examples: Split-train/ and Split-eval/ of gzipped TFRecords;
  custom properties `train_num_examples` and `eval_num_examples`).

  ## Example
  ```
    example_gen = MnistExampleGen(input_dir='gs://bucket/mnist')
  ```
  """

  SPEC_CLASS = MnistExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.Driver

  def __init__(self, input_dir: str, num_train_shards: Optional[int] = None,
               num_eval_shards: Optional[int] = None, input_fingerprint: Optional[str] = None):
    """Constructs a MnistExampleGen.

    Args:
      input_dir: Directory (local, gs://, ... anything fileio reads) with
        train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
        t10k-labels-idx1-ubyte, each optionally gzipped (.gz), and optionally SHA256SUMS.
      num_train_shards: TFRecord files for the train split (default: see
        constants.DEFAULT_NUM_SHARDS).
      num_eval_shards: TFRecord files for the eval split (default: likewise).
      input_fingerprint: `idx.input_fingerprint(input_dir)` taken when the pipeline was compiled,
        for orchestrators that do not run the driver (Kubeflow Pipelines): it puts the data's
        content into their cache key. The executor fails when the files no longer match it.

    Raises:
      ValueError: an empty input_dir or a shard count below 1 (checked when the pipeline is
        built, not after the run started).
    """
    if not input_dir:
      raise ValueError("MnistExampleGen needs an input_dir holding the four MNIST IDX files")
    for name, count in (("num_train_shards", num_train_shards),
                        ("num_eval_shards", num_eval_shards)):
      if count is not None and count < 1:
        raise ValueError(f"{name} must be at least 1, got {count}")
    spec = MnistExampleGenSpec(
        input_dir=input_dir,
        num_train_shards=num_train_shards,
        num_eval_shards=num_eval_shards,
        input_fingerprint=input_fingerprint,
        examples=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)
