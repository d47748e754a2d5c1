"""The short report `mnist-tfx run` prints at the end: where everything is and what was decided."""

import os
from typing import List

from ml_metadata.proto import metadata_store_pb2

from components.anomalies_gate import executor as anomalies_gate_executor
from components.statistics_gen import executor as statistics_gen_executor
from pipeline import mlmd_queries
from tfx.types import artifact_utils


def _anomaly_lines(anomalies: metadata_store_pb2.Artifact) -> List[str]:
  artifact = artifact_utils.deserialize_artifact(None, anomalies)
  return anomalies_gate_executor.describe_anomalies(artifact)


def render(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
           metadata_path: str) -> str:
  """Describes the pipeline's last run from ML Metadata."""
  artifacts = mlmd_queries.last_run_artifacts(connection_config, pipeline_name)
  prop = mlmd_queries.custom_property
  lines = [f"== {pipeline_name}: summary of the last run =="]
  examples = artifacts.get("Examples")
  if examples:
    counts = ", ".join(f"{split} {prop(examples, f'{split}_num_examples')}"
                       for split in ("train", "eval"))
    lines.append(f"Examples:            {examples.uri} ({counts})")
  statistics = artifacts.get("ExampleStatistics")
  if statistics:
    lines.append("Statistics report:   "
                 f"{os.path.join(statistics.uri, statistics_gen_executor.HTML_REPORT_NAME)}")
  anomalies = artifacts.get("ExampleAnomalies")
  if anomalies:
    found = _anomaly_lines(anomalies)
    lines.append(f"Anomalies:           {anomalies.uri} "
                 f"({'none' if not found else f'{len(found)} found'})")
    lines.extend(f"  - {line}" for line in found)
  lines.append(f"ML Metadata:         {metadata_path}")
  return "\n".join(lines)
