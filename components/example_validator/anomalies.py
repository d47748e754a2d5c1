"""Reads an ExampleAnomalies artifact (what ExampleValidator found) as one line per anomaly.

Light on purpose (no TFDV, Beam or TensorFlow import of its own): the AnomaliesGate, the run
summary and the report read anomalies through it.
"""

import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

# The file TFX's ExampleValidator writes in each split directory (its executor's
# DEFAULT_FILE_NAME; importing that executor would import TFDV).
ANOMALIES_FILE_NAME = "SchemaDiff.pb"


def describe_anomalies(anomalies_artifact: types.Artifact) -> List[str]:
  """One line per anomaly in every split: `split S, feature F: short: description`."""
  lines = []
  for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
    path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split),
                        ANOMALIES_FILE_NAME)
    with fileio.open(path, "rb") as f:
      anomalies = anomalies_pb2.Anomalies.FromString(f.read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f"split {split}, feature {feature}: {info.short_description}: "
                   f"{info.description}")
    if anomalies.HasField("dataset_anomaly_info"):
      info = anomalies.dataset_anomaly_info
      lines.append(f"split {split}, dataset: {info.short_description}: {info.description}")
  return lines
