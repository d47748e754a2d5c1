"""Fails the run when ExampleValidator found anomalies, so no model is trained on bad data."""

import os
from typing import Any, Dict, List

from absl import logging
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.example_validator import executor as example_validator_executor
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

ANOMALIES_KEY = "anomalies"
ALLOW_ANOMALIES_KEY = "allow_anomalies"


class DataAnomaliesError(RuntimeError):
  """The validated data has anomalies and the gate is closed."""


def describe_anomalies(anomalies_artifact: types.Artifact) -> List[str]:
  """One line per anomaly in every split of an ExampleAnomalies artifact."""
  lines = []
  for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
    path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split),
                        example_validator_executor.DEFAULT_FILE_NAME)
    with fileio.open(path, "rb") as f:
      anomalies = anomalies_pb2.Anomalies.FromString(f.read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f"split {split}, feature {feature}: {info.short_description}: "
                   f"{info.description}")
    if anomalies.HasField("dataset_anomaly_info"):
      info = anomalies.dataset_anomaly_info
      lines.append(f"split {split}, dataset: {info.short_description}: {info.description}")
  return lines


class Executor(base_executor.BaseExecutor):
  """Raises DataAnomaliesError listing the anomalies, unless the user explicitly allows them."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    anomalies = artifact_utils.get_single_instance(input_dict[ANOMALIES_KEY])
    found = describe_anomalies(anomalies)
    if not found:
      logging.info("No data anomalies in %s; training may start.", anomalies.uri)
      return
    report = "\n  ".join(found)
    if exec_properties.get(ALLOW_ANOMALIES_KEY):
      logging.warning("Data anomalies allowed by %s=True; training anyway:\n  %s",
                      ALLOW_ANOMALIES_KEY, report)
      return
    raise DataAnomaliesError(
        f"ExampleValidator found {len(found)} data anomal{'y' if len(found) == 1 else 'ies'}; "
        f"refusing to train (set {ALLOW_ANOMALIES_KEY}=True to override):\n  {report}")
