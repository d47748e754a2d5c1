"""MnistExampleGen's driver: makes the cache key follow the input files' content.

TFX reuses a cached execution when the parameters are unchanged, and `input_dir` alone does not
change when files inside it are replaced. Like TFX's own file-based ExampleGen driver, this one
adds a fingerprint of the input files (`idx.input_fingerprint`) to the exec properties before the
cache is consulted. It never fails: missing or bad files are left for the executor to report.
Custom drivers do not run on Kubeflow Pipelines: there `mnist-tfx kubeflow compile` computes the
same fingerprint and passes it as the execution parameter.
"""

from tfx.dsl.components.base import base_driver
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2

from components.mnist_example_gen import constants
from components.mnist_example_gen import idx


class Driver(base_driver.BaseDriver):
  """Adds `input_fingerprint` to the exec properties (used by LocalDagRunner's launcher)."""

  def run(self, execution_info: data_types.ExecutionInfo) -> driver_output_pb2.DriverOutput:
    result = driver_output_pb2.DriverOutput()
    result.exec_properties[constants.INPUT_FINGERPRINT_KEY].string_value = idx.input_fingerprint(
        execution_info.exec_properties[constants.INPUT_DIR_KEY])
    return result
