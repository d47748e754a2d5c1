"""What `mnist-tfx run` says about each artifact: the summary at the end and the console's figures.

One describer per artifact type; the summary, the console's per-component lines and the run
report (report.py) all read artifacts through these.
"""


import os
import shlex
import shutil
import sys
from typing import Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.components.evaluator import constants as tfx_evaluator_constants
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from components.evaluator import blessing as blessing_lib
from components.example_validator import anomalies as anomalies_lib
from components.mnist_example_gen import constants as example_gen_constants
from components.pusher import constants as pusher_constants
from components.statistics_gen import constants as statistics_gen_constants
from core import evaluation_metrics
from mnist_tfx import mlmd_queries
from mnist_tfx import training_curves


def example_counts(examples: types.Artifact) -> Dict[str, int]:
  """{split: number of examples} of an Examples artifact, in split order."""
  return {split: examples.get_int_custom_property(
              example_gen_constants.num_examples_property(split))
          for split in artifact_utils.decode_split_names(examples.split_names)}


def read_evaluation(evaluation: types.Artifact) -> evaluation_metrics.EvaluationMetrics:
  """The evaluator's metrics.json in a ModelEvaluation artifact."""
  path = os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME)
  with fileio.open(path, "rb") as f:
    return evaluation_metrics.from_json(f.read(), path)


def accuracies(metrics: evaluation_metrics.EvaluationMetrics) -> str:
  return (f"int8 accuracy {metrics.int8.accuracy:.4f}, float accuracy "
          f"{metrics.float_model.accuracy:.4f}")


def is_blessed(blessing: types.Artifact) -> bool:
  """Whether a ModelBlessing blesses its model (TFX's `blessed` property, as Pusher reads it)."""
  return bool(blessing.get_int_custom_property(
      tfx_evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY))


def published_a_new_version(pushed: types.Artifact) -> bool:
  """False when the push found its files identical to the latest version's (nothing new)."""
  return (not pushed.has_custom_property(pusher_constants.NEW_VERSION_PUBLISHED_KEY) or
          bool(pushed.get_int_custom_property(pusher_constants.NEW_VERSION_PUBLISHED_KEY)))


def pushed_io(pushed: types.Artifact) -> str:
  """'uint8 I/O' or 'int8 I/O': the pushed model's input and output type ('' if not recorded)."""
  io_dtype = pushed.get_string_custom_property(pusher_constants.IO_DTYPE_KEY)
  return f"{io_dtype} I/O" if io_dtype else ""


def push_outcome(pushed: types.Artifact) -> str:
  """Where the model went, its I/O type and Edge TPU status (compiled: mapping, runtime needed,
  on-chip/off-chip parameter memory, subgraphs), or why nothing (new) was pushed."""
  if pushed.get_int_custom_property(pusher_constants.PUSHED_KEY):
    version = (f"version {pushed.get_string_custom_property(pusher_constants.PUSHED_VERSION_KEY)}"
               if published_a_new_version(pushed) else
               pushed.get_string_custom_property(pusher_constants.REASON_KEY))
    io = pushed_io(pushed)
    return (f"{version}{', ' + io if io else ''}, Edge TPU: "
            f"{pushed.get_string_custom_property(pusher_constants.EDGETPU_STATUS_KEY)}")
  return f"nothing pushed ({not_pushed_reason(pushed)})"


def not_pushed_reason(pushed: types.Artifact) -> str:
  """Why nothing was pushed: "not blessed" when the blessing refused the model (its verdict, which
  the pusher records in full, is shown once, as the evaluation's), else the pusher's reason."""
  reason = pushed.get_string_custom_property(pusher_constants.REASON_KEY)
  return (blessing_lib.NOT_BLESSED if reason.startswith(blessing_lib.NOT_BLESSED + ":")
          else reason)


def final_eval_accuracy(model_run: types.Artifact) -> Optional[str]:
  """`float eval accuracy A after N epochs` from the Trainer's event files, if it wrote them."""
  accuracy = training_curves.read_scalars(training_curves.eval_dir(model_run.uri), ("accuracy",))
  if "accuracy" not in accuracy:
    return None
  steps, values = accuracy["accuracy"]
  epochs = len(steps)
  return f"float eval accuracy {values[-1]:.4f} after {epochs} epoch{'s' if epochs > 1 else ''}"


def one_figure(outputs: mlmd_queries.Artifacts) -> str:
  """The figure that matters among one component's outputs, for its console line."""
  parts: List[str] = []
  if "Examples" in outputs:
    parts.append(", ".join(f"{split} {count}" for split, count in
                           example_counts(outputs["Examples"]).items()) + " examples")
  if "ExampleStatistics" in outputs:
    parts.append("statistics of " + ", ".join(
        artifact_utils.decode_split_names(outputs["ExampleStatistics"].split_names)))
  if "ExampleAnomalies" in outputs:
    found = anomalies_lib.describe_anomalies(outputs["ExampleAnomalies"])
    parts.append(f"{len(found)} anomalies found" if found else "no anomalies")
  if "ModelRun" in outputs:
    parts.append(final_eval_accuracy(outputs["ModelRun"]) or "")
  if "ModelEvaluation" in outputs:
    parts.append(accuracies(read_evaluation(outputs["ModelEvaluation"])))
  if "ModelBlessing" in outputs:
    parts.append("blessed" if is_blessed(outputs["ModelBlessing"]) else "not blessed")
  if "PushedModel" in outputs:
    parts.append(push_outcome(outputs["PushedModel"]))
  return ", ".join(part for part in parts if part)


def render(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
           pipeline_root: str, metadata_path: str) -> str:
  """Describes the pipeline's last run from ML Metadata."""
  artifacts = mlmd_queries.last_run_artifacts(connection_config, pipeline_name)
  lines = [f"== {pipeline_name}: summary of the last run =="]
  examples = artifacts.get("Examples")
  if examples:
    counts = ", ".join(f"{split} {count}" for split, count in example_counts(examples).items())
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
    metrics = read_evaluation(evaluation)
    lines.append(f"Evaluation:          {evaluation.uri} (on {metrics.num_examples} "
                 f"{metrics.eval_split} examples)")
    lines.append(f"  {accuracies(metrics)}, quantization drop "
                 f"{100 * metrics.quantization_accuracy_drop:.2f} pp")
    lines.append(f"  Verdict: {metrics.reason}")
  pushed = artifacts.get("PushedModel")
  if pushed:
    if pushed.get_int_custom_property(pusher_constants.PUSHED_KEY):
      destination = pushed.get_string_custom_property(pusher_constants.PUSHED_DESTINATION_KEY)
      if not published_a_new_version(pushed):
        destination = (f"{pushed.get_string_custom_property(pusher_constants.REASON_KEY)} "
                       f"({destination})")
      io = pushed_io(pushed)
      lines.append(f"Pushed:              {destination}{f', {io}' if io else ''}")
      lines.append("  Edge TPU: "
                   f"{pushed.get_string_custom_property(pusher_constants.EDGETPU_STATUS_KEY)}")
    else:
      lines.append(f"Pushed:              nothing ({not_pushed_reason(pushed)})")
  lines.append(f"ML Metadata:         {metadata_path}")
  if "ModelRun" in artifacts:
    lines.append(f"TensorBoard:         {tensorboard_command(pipeline_root)}")
  return "\n".join(lines)


def tensorboard_command(pipeline_root: str) -> str:
  """The command that serves this run in TensorBoard, runnable as printed: the `mnist-tfx` of
  this installation (e.g. .venv/bin/mnist-tfx after `make run`) unless it is the one on PATH; the
  root quoted for the shell (pipeline roots may hold spaces or commas)."""
  installed = os.path.join(os.path.dirname(sys.executable), "mnist-tfx")
  on_path = shutil.which("mnist-tfx")
  program = "mnist-tfx" if on_path and os.path.realpath(on_path) == os.path.realpath(
      installed) else os.path.relpath(installed) if os.path.exists(installed) else "mnist-tfx"
  return f"{program} tensorboard --pipeline-root {shlex.quote(pipeline_root)}"
