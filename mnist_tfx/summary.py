"""The short report `mnist-tfx run` prints at the end: where everything is and what was decided."""


import json
import os

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from components.evaluator import constants as evaluator_constants
from components.example_validator import anomalies as anomalies_lib
from components.mnist_example_gen import constants as example_gen_constants
from components.pusher import constants as pusher_constants
from components.statistics_gen import constants as statistics_gen_constants
from mnist_tfx import mlmd_queries


def render(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
           pipeline_root: str, metadata_path: str) -> str:
  """Describes the pipeline's last run from ML Metadata."""
  artifacts = mlmd_queries.last_run_artifacts(connection_config, pipeline_name)
  lines = [f"== {pipeline_name}: summary of the last run =="]
  examples = artifacts.get("Examples")
  if examples:
    counts = ", ".join(
        f"{split} "
        f"{examples.get_int_custom_property(example_gen_constants.num_examples_property(split))}"
        for split in artifact_utils.decode_split_names(examples.split_names))
    lines.append(f"Examples:            {examples.uri} ({counts})")
  statistics = artifacts.get("ExampleStatistics")
  if statistics:
    lines.append("Statistics report:   "
                 f"{statistics_gen_constants.html_report_path(statistics.uri)}")
  anomalies = artifacts.get("ExampleAnomalies")
  if anomalies:
    found = anomalies_lib.describe_anomalies(anomalies)
    lines.append(f"Anomalies:           {anomalies.uri} "
                 f"({'none' if not found else f'{len(found)} found'})")
    lines.extend(f"  - {line}" for line in found)
  if "Model" in artifacts:
    lines.append(f"Trained model:       {artifacts['Model'].uri}")
  evaluation = artifacts.get("ModelEvaluation")
  if evaluation:
    with fileio.open(os.path.join(evaluation.uri, evaluator_constants.METRICS_FILE)) as f:
      metrics = json.load(f)
    lines.append(f"Evaluation:          {evaluation.uri} (on {metrics['num_examples']} "
                 f"{metrics['eval_split']} examples)")
    lines.append(f"  int8 accuracy {metrics['int8']['accuracy']:.4f}, float accuracy "
                 f"{metrics['float']['accuracy']:.4f}, quantization drop "
                 f"{100 * metrics['quantization_accuracy_drop']:.2f} pp")
    lines.append(f"  Verdict: {metrics['reason']}")
  pushed = artifacts.get("PushedModel")
  if pushed:
    if pushed.get_int_custom_property(pusher_constants.PUSHED_KEY):
      destination = pushed.get_string_custom_property(pusher_constants.PUSHED_DESTINATION_KEY)
      if (pushed.has_custom_property(pusher_constants.NEW_VERSION_PUBLISHED_KEY) and
          not pushed.get_int_custom_property(pusher_constants.NEW_VERSION_PUBLISHED_KEY)):
        destination = (f"{pushed.get_string_custom_property(pusher_constants.REASON_KEY)} "
                       f"({destination})")
      lines.append(f"Pushed:              {destination}")
      lines.append("  Edge TPU: "
                   f"{pushed.get_string_custom_property(pusher_constants.EDGETPU_STATUS_KEY)}")
    else:
      lines.append("Pushed:              nothing ("
                   f"{pushed.get_string_custom_property(pusher_constants.REASON_KEY)})")
  lines.append(f"ML Metadata:         {metadata_path}")
  if "ModelRun" in artifacts:
    lines.append(f"TensorBoard:         mnist-tfx tensorboard --pipeline-root {pipeline_root}")
  return "\n".join(lines)
