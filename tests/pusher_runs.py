"""Runs EdgeTpuPusher's executor as an orchestrator would, on a real model and blessing."""

import os

from tfx.components.evaluator import constants as tfx_evaluator_constants
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from components.evaluator import constants as evaluator_constants
from components.pusher import constants
from components.pusher import executor


def make_blessing(uri: str, blessed: bool, sha256: str, reason: str):
  """A ModelBlessing with the custom properties Int8Evaluator publishes."""
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = uri
  os.makedirs(uri, exist_ok=True)
  blessing.set_int_custom_property(
      tfx_evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
      tfx_evaluator_constants.BLESSED_VALUE if blessed else
      tfx_evaluator_constants.NOT_BLESSED_VALUE)
  blessing.set_string_custom_property(evaluator_constants.TFLITE_SHA256_PROPERTY, sha256)
  blessing.set_string_custom_property(evaluator_constants.BLESSING_MESSAGE_PROPERTY, reason)
  return blessing


def run_pusher(tmp_path, model_uri, blessing, destination, evaluation=None, **params):
  """Runs the executor as the orchestrator would; returns the PushedModel artifact."""
  model = standard_artifacts.Model()
  model.uri = model_uri
  model.id = 11
  input_dict = {standard_component_specs.MODEL_KEY: [model],
                standard_component_specs.MODEL_BLESSING_KEY: [blessing]}
  if evaluation is not None:
    input_dict[standard_component_specs.EVALUATION_KEY] = [evaluation]
  pushed_model = standard_artifacts.PushedModel()
  pushed_model.uri = str(tmp_path / "pushed_model")
  os.makedirs(pushed_model.uri, exist_ok=True)
  exec_properties = {constants.PUSH_DESTINATION_KEY: destination, **params}
  context = executor.Executor.Context(tmp_dir=str(tmp_path / "tmp"), unique_id="1")
  executor.Executor(context).Do(input_dict,
                                {standard_component_specs.PUSHED_MODEL_KEY: [pushed_model]},
                                exec_properties)
  return pushed_model
