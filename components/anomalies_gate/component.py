"""AnomaliesGate: the stop between data validation and training.

TFX's Trainer has no anomalies input, so the pipeline makes the Trainer depend on this gate
(`trainer.add_upstream_node(gate)`); when the gate fails, the run stops before a model is trained
or pushed, on LocalDagRunner and on Kubeflow alike.
"""

from typing import Any, Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components.anomalies_gate import constants
from components.anomalies_gate import executor
from core import config_values


class AnomaliesGateSpec(ComponentSpec):
  PARAMETERS = {constants.ALLOW_ANOMALIES_KEY: ExecutionParameter(type=int, optional=True)}
  INPUTS = {constants.ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies)}
  OUTPUTS = {}


class AnomaliesGate(base_component.BaseComponent):
  """Fails with the list of anomalies found by ExampleValidator; passes on clean data."""

  SPEC_CLASS = AnomaliesGateSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, anomalies: types.BaseChannel, allow_anomalies: Optional[Any] = None):
    """Args: anomalies: ExampleValidator's output. allow_anomalies: train despite anomalies (a
    bool, or text read by config_values.parse_bool; anything else raises ValueError)."""
    super().__init__(spec=AnomaliesGateSpec(
        anomalies=anomalies,
        allow_anomalies=None if allow_anomalies is None else int(
            config_values.parse_bool(constants.ALLOW_ANOMALIES_KEY, allow_anomalies))))
