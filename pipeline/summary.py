"""The short report `mnist-tfx run` prints at the end: where everything is and what was decided."""


from ml_metadata.proto import metadata_store_pb2
from tfx.types import artifact_utils

from components.anomalies_gate import executor as anomalies_gate_executor
from components.mnist_example_gen import executor as example_gen_executor
from components.statistics_gen import executor as statistics_gen_executor
from pipeline import mlmd_queries


def render(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
           metadata_path: str) -> str:
  """Describes the pipeline's last run from ML Metadata."""
  artifacts = mlmd_queries.last_run_artifacts(connection_config, pipeline_name)
  lines = [f"== {pipeline_name}: summary of the last run =="]
  examples = artifacts.get("Examples")
  if examples:
    counts = ", ".join(
        f"{split} {examples.get_int_custom_property(example_gen_executor.num_examples_property(split))}"
        for split in artifact_utils.decode_split_names(examples.split_names))
    lines.append(f"Examples:            {examples.uri} ({counts})")
  statistics = artifacts.get("ExampleStatistics")
  if statistics:
    lines.append(f"Statistics report:   {statistics_gen_executor.html_report_path(statistics)}")
  anomalies = artifacts.get("ExampleAnomalies")
  if anomalies:
    found = anomalies_gate_executor.describe_anomalies(anomalies)
    lines.append(f"Anomalies:           {anomalies.uri} "
                 f"({'none' if not found else f'{len(found)} found'})")
    lines.extend(f"  - {line}" for line in found)
  lines.append(f"ML Metadata:         {metadata_path}")
  return "\n".join(lines)
