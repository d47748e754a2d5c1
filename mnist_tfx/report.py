"""The run report: PIPELINE_ROOT/report.html, one static page a person opens instead of the logs.

Rendered from ML Metadata and the artifacts of the pipeline's last run: the data (counts, the TFDV
statistics page, anomalies), the training curves (from the Trainer's event files), the evaluation
(int8 vs float, per-class precision and recall, the confusion matrix, the verdict), the Edge TPU
compatibility table, the pushed version and its files, and the TensorBoard command. The page is
self-contained: plots are PNGs embedded as data: URIs, styles are inline, there is no script and
nothing is fetched from the web. Template: mnist_tfx/templates/report.html.j2 (package data).
"""

import base64
import datetime
import io
import os
from typing import Any, Dict, List, Optional

import jinja2
from matplotlib import figure as matplotlib_figure
from ml_metadata.proto import metadata_store_pb2
import numpy as np
from PIL import Image
from tfx import types
from tfx.dsl.io import fileio

from components.evaluator import constants as evaluator_constants
from components.evaluator import tensorboard_summary
from components.example_validator import anomalies as anomalies_lib
from components.pusher import constants as pusher_constants
from components.pusher import edgetpu_compatibility
from components.pusher import edgetpu_compiler
from components.statistics_gen import constants as statistics_gen_constants
from core import contract
from core import evaluation_metrics
from core import push_manifest
from mnist_tfx import mlmd_queries
from mnist_tfx import summary
from mnist_tfx import training_curves

REPORT_FILE = "report.html"
TEMPLATE = "report.html.j2"

_CURVE_TITLES = {"loss": "Loss (cross-entropy)", "accuracy": "Accuracy",
                 "learning_rate": "Learning rate"}


def report_path(pipeline_root: str) -> str:
  return os.path.join(pipeline_root, REPORT_FILE)


def _png_data_uri(write_png) -> str:
  buffer = io.BytesIO()
  write_png(buffer)
  return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _curve_plot(tag: str, curves: Dict[str, Dict[str, training_curves.Curve]]) -> str:
  """One PNG (data: URI) of `tag` against the training step: training steps and eval epochs."""
  # matplotlib's object-oriented API: no pyplot state, no GUI backend.
  figure = matplotlib_figure.Figure(figsize=(5, 3.2), dpi=100)
  axes = figure.subplots()
  if tag in curves["train"]:
    steps, values = curves["train"][tag]
    axes.plot(steps, values, ".-", label="train (per logged step)", color="tab:blue")
  if tag in curves["eval"]:
    steps, values = curves["eval"][tag]
    axes.plot(steps, values, "o-", label="eval split (end of each epoch)", color="tab:orange")
  axes.set_title(_CURVE_TITLES.get(tag, tag))
  axes.set_xlabel("training step")
  axes.grid(alpha=0.3)
  axes.legend(fontsize="small")
  figure.tight_layout()
  return _png_data_uri(lambda buffer: figure.savefig(buffer, format="png"))


def _image_data_uri(rgb: np.ndarray) -> str:
  return _png_data_uri(lambda buffer: Image.fromarray(rgb).save(buffer, format="PNG"))


def _relative_link(target: str, pipeline_root: str) -> str:
  """A link from report.html to `target`: relative for local files, else the URI itself."""
  if "://" in target or "://" in pipeline_root:
    return target
  return os.path.relpath(target, pipeline_root)


def _read_manifest(pushed: types.Artifact) -> Optional[push_manifest.PushManifest]:
  """The model.json archived in a PushedModel that pushed (None otherwise)."""
  path = os.path.join(pushed.uri, push_manifest.FILE_NAME)
  if not pushed.get_int_custom_property(pusher_constants.PUSHED_KEY) or not fileio.exists(path):
    return None
  with fileio.open(path, "rb") as f:
    return push_manifest.from_json(f.read(), path)


def _compilation(manifest: push_manifest.PushManifest) -> Optional[Dict[str, Any]]:
  """What edgetpu_compiler reported, for people: runtime needed, memory, subgraphs (None if it did
  not run)."""
  report = manifest.edgetpu.compiler
  if report is None:
    return None

  def size(num_bytes: Optional[int]) -> str:
    return "unknown" if num_bytes is None else edgetpu_compiler.format_bytes(num_bytes)
  return {
      "compiler": f"{report.compiler_version} ({report.compiler_path})",
      "runtime": ("unknown" if report.required_runtime_version is None else
                  f"{report.required_runtime_version} or later") + (
                      "" if report.requested_min_runtime_version is None else
                      f" (compiled with -m {report.requested_min_runtime_version})"),
      "on_chip": f"{size(report.on_chip_memory_used_bytes)} used, "
                 f"{size(report.on_chip_memory_remaining_bytes)} remaining",
      "off_chip": size(report.off_chip_memory_used_bytes),
      "off_chip_ok": not report.off_chip_memory_used_bytes,
      "subgraphs": report.edgetpu_subgraphs,
      "subgraphs_ok": report.edgetpu_subgraphs in (None, 1),
      "operations": f"{report.operations_on_edgetpu} of {report.operations_total}",
  }


def _evaluation_section(metrics: evaluation_metrics.EvaluationMetrics) -> Dict[str, Any]:
  int8, float_model = metrics.int8, metrics.float_model
  per_class = [{"label": label, "int8_precision": int8.precision[i],
                "int8_recall": int8.recall[i], "float_precision": float_model.precision[i],
                "float_recall": float_model.recall[i]}
               for i, label in enumerate(contract.LABELS)]
  return {
      "metrics": metrics.to_dict(),
      "reason": _sentence(metrics.reason),
      "per_class": per_class,
      "confusion_matrix_image": _image_data_uri(tensorboard_summary.confusion_matrix_image(
          np.asarray(int8.confusion_matrix))),
      "confusion_matrix": int8.confusion_matrix,
  }


def _compatibility(pushed_manifest: Optional[push_manifest.PushManifest],
                   evaluation_uri: Optional[str]) -> Optional[Dict[str, Any]]:
  """The Edge TPU table: the pushed model.json's, else predicted from the evaluated int8 model."""
  if pushed_manifest:
    table = {**pushed_manifest.edgetpu_compatibility.model_dump(),
             "source": "the pushed model.json"}
  elif evaluation_uri and fileio.exists(
      os.path.join(evaluation_uri, evaluator_constants.CANDIDATE_TFLITE_FILE)):
    path = os.path.join(evaluation_uri, evaluator_constants.CANDIDATE_TFLITE_FILE)
    with fileio.open(path, "rb") as f:
      report = edgetpu_compatibility.check_edgetpu_compatibility(f.read())
    table = {**report.to_dict(), "source": f"the evaluated int8 model {path}"}
  else:
    return None
  for operator in table["operators"]:
    operator["mapped"] = operator["status"] == edgetpu_compatibility.MAPPED
  return table


def _sentence(text: str) -> str:
  return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _verdict(artifacts: mlmd_queries.Artifacts, anomalies: List[str],
             metrics: Optional[Dict[str, Any]], failure: Optional[str]) -> Dict[str, str]:
  """The headline: blessed and pushed, not blessed, or where the run stopped (and why: `failure`,
  the run's own failure line, when given)."""
  pushed = artifacts.get("PushedModel")
  if metrics is not None:
    text = _sentence(metrics.reason)
    if pushed is not None:
      text += f" Push: {summary.push_outcome(pushed)}."
    return {"status": "blessed" if metrics.blessed else "not blessed", "text": text}
  if anomalies:
    return {"status": "stopped",
            "text": f"Stopped before training: data validation found {len(anomalies)} "
                    f"anomal{'y' if len(anomalies) == 1 else 'ies'}."}
  if failure:
    return {"status": "stopped", "text": _sentence(failure)}
  return {"status": "stopped", "text": "The run stopped before the model was evaluated; see the "
          "log file."}


def render(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
           pipeline_root: str, log_path: Optional[str] = None,
           failure: Optional[str] = None) -> str:
  """The report of the pipeline's last run as one HTML document; `failure` is the line the run
  ended with when it failed (core.errors.error_line)."""
  artifacts = mlmd_queries.last_run_artifacts(connection_config, pipeline_name)
  page: Dict[str, Any] = {
      "pipeline_name": pipeline_name,
      "pipeline_root": pipeline_root,
      "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      "log_path": log_path,
      "metadata_path": connection_config.sqlite.filename_uri,
  }
  examples = artifacts.get("Examples")
  if examples:
    page["examples"] = {"uri": examples.uri, "counts": summary.example_counts(examples)}
  statistics = artifacts.get("ExampleStatistics")
  if statistics:
    page["statistics_link"] = _relative_link(
        statistics_gen_constants.html_report_path(statistics.uri), pipeline_root)
  anomalies: List[str] = []
  if "ExampleAnomalies" in artifacts:
    anomalies = anomalies_lib.describe_anomalies(artifacts["ExampleAnomalies"])
    page["anomalies"] = anomalies
  if "ModelRun" in artifacts:
    curves = training_curves.read_run(artifacts["ModelRun"].uri)
    tags = [tag for tag in training_curves.CURVE_TAGS
            if tag in curves["train"] or tag in curves["eval"]]
    page["training"] = {
        "model_uri": artifacts["Model"].uri if "Model" in artifacts else None,
        "model_run_uri": artifacts["ModelRun"].uri,
        "plots": [{"title": _CURVE_TITLES[tag], "image": _curve_plot(tag, curves)}
                  for tag in tags],
        "final": summary.final_eval_accuracy(artifacts["ModelRun"]),
    }
    page["tensorboard_command"] = summary.tensorboard_command(pipeline_root)
  metrics = None
  evaluation = artifacts.get("ModelEvaluation")
  if evaluation:
    metrics = summary.read_evaluation(evaluation)
    page["evaluation"] = _evaluation_section(metrics)
  pushed_manifest = None
  pushed = artifacts.get("PushedModel")
  if pushed is not None:
    pushed_manifest = _read_manifest(pushed)
    page["push"] = {
        "outcome": summary.push_outcome(pushed),
        "destination": pushed.get_string_custom_property(
            pusher_constants.PUSHED_DESTINATION_KEY),
        "manifest": pushed_manifest.to_dict() if pushed_manifest else None,
        "compilation": _compilation(pushed_manifest) if pushed_manifest else None,
    }
  page["edgetpu"] = _compatibility(pushed_manifest, evaluation.uri if evaluation else None)
  page["verdict"] = _verdict(artifacts, anomalies, metrics, failure)
  environment = jinja2.Environment(loader=jinja2.PackageLoader("mnist_tfx", "templates"),
                                   autoescape=True, undefined=jinja2.StrictUndefined)
  return environment.get_template(TEMPLATE).render(page=page)


def write(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
          pipeline_root: str, log_path: Optional[str] = None,
          failure: Optional[str] = None) -> str:
  """Renders the report to PIPELINE_ROOT/report.html (replacing the last one); returns its path."""
  path = report_path(pipeline_root)
  html = render(connection_config, pipeline_name, pipeline_root, log_path, failure)
  with fileio.open(path, "w") as f:
    f.write(html)
  return path
