"""Runs EdgeTpuPusher's executor as an orchestrator would, on a real model and blessing."""

import hashlib
import os
import shutil

import pytest
from tfx.components.evaluator import constants as tfx_evaluator_constants
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from components.evaluator import constants as evaluator_constants
from components.pusher import constants
from components.pusher import edgetpu_compiler
from components.pusher import executor
from core import contract
from core import int8_tflite


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


def push_slice_model(work, trained_model_dir: str, io_dtype: str = contract.DEFAULT_IO_DTYPE,
                     **params) -> str:
  """Pushes `trained_model_dir` with a blessing for its int8 bytes (converted with `io_dtype`),
  with no edgetpu_compiler on PATH (the CPU model is pushed, as on this machine); returns DEST/1.

  `work` is an empty directory (pathlib.Path) for the model, blessing and destination.
  """
  model_uri = str(work / "model")
  shutil.copytree(trained_model_dir, path_utils.serving_model_dir(model_uri))
  int8_model = int8_tflite.convert_to_int8_tflite(path_utils.serving_model_path(model_uri),
                                                  io_dtype=io_dtype)
  blessing = make_blessing(str(work / "blessing"), True, hashlib.sha256(int8_model).hexdigest(),
                           f"blessed for a test ({io_dtype} I/O)")
  destination = str(work / "pushed_models")
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("PATH", os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep)
        if d and not os.path.exists(os.path.join(d, edgetpu_compiler.COMPILER_NAME))))
    run_pusher(work, model_uri, blessing, destination,
               **{constants.IO_DTYPE_KEY: io_dtype, **params})
  return os.path.join(destination, "1")
