"""MnistExampleGen's driver: makes the cache key follow the input files' content.

TFX reuses a cached execution when the parameters are unchanged, and `input_dir` alone does not
change when files inside it are replaced. Like TFX's own file-based ExampleGen driver, this one
adds a fingerprint of the input files to the exec properties before the cache is consulted.
It never fails: missing or bad files are left for the executor to report.
"""

import os

from tfx.dsl.components.base import base_driver
from tfx.dsl.io import fileio
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2

from components.mnist_example_gen import constants
from components.mnist_example_gen import idx


def input_fingerprint(input_dir: str) -> str:
  """`name:sha256` of every input file present (each IDX name, gzipped or raw, and SHA256SUMS)."""
  names = [idx.CHECKSUMS_FILE] + [n + suffix for n in idx.STANDARD_FILES
                                  for suffix in (idx.GZIP_SUFFIX, "")]
  return ",".join(f"{name}:{idx.sha256_hex(os.path.join(input_dir, name))}"
                  for name in sorted(names)
                  if fileio.exists(os.path.join(input_dir, name)))


class Driver(base_driver.BaseDriver):
  """Adds `input_fingerprint` to the exec properties (used by LocalDagRunner's launcher)."""

  def run(self, execution_info: data_types.ExecutionInfo) -> driver_output_pb2.DriverOutput:
    result = driver_output_pb2.DriverOutput()
    result.exec_properties[constants.INPUT_FINGERPRINT_KEY].string_value = input_fingerprint(
        execution_info.exec_properties[constants.INPUT_DIR_KEY])
    return result
