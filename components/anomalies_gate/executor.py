"""Fails the run when ExampleValidator found anomalies, so no model is trained on bad data."""

from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.anomalies_gate import constants
from components.example_validator import anomalies as anomalies_lib
from core import config_values
from core import errors


class DataAnomaliesError(errors.PipelineInputError):
  """The validated data has anomalies and the gate is closed."""


class Executor(base_executor.BaseExecutor):
  """Raises DataAnomaliesError listing the anomalies, unless the user explicitly allows them."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    anomalies = artifact_utils.get_single_instance(input_dict[constants.ANOMALIES_KEY])
    found = anomalies_lib.describe_anomalies(anomalies)
    if not found:
      logging.info("No data anomalies in %s; training may start.", anomalies.uri)
      return
    report = "\n  ".join(found)
    allow = exec_properties.get(constants.ALLOW_ANOMALIES_KEY)  # Kubeflow may pass text.
    if allow not in (None, "") and config_values.parse_bool(constants.ALLOW_ANOMALIES_KEY, allow):
      logging.warning("Data anomalies allowed by %s=True; training anyway:\n  %s",
                      constants.ALLOW_ANOMALIES_KEY, report)
      return
    raise DataAnomaliesError(
        f"ExampleValidator found {len(found)} data anomal{'y' if len(found) == 1 else 'ies'}; "
        f"refusing to train (set {constants.ALLOW_ANOMALIES_KEY}=True to override):\n  {report}")
