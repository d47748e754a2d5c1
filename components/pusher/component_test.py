"""EdgeTpuPusher as a component: its spec, and a run in a real LocalDagRunner pipeline with MLMD."""

import hashlib
import json
import os
import shutil

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest
from tfx import types
from tfx import v1 as tfx
from tfx.components.evaluator import constants as tfx_evaluator_constants
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from components.evaluator import constants as evaluator_constants
from components.pusher import component
from components.pusher import constants
from components.pusher import edgetpu_compiler
from components.pusher import executor
from core import int8_tflite
from core import push_manifest

pytestmark = pytest.mark.integration  # Runs TFX pipelines or trains models.


def _channel(artifact_type):
  return types.Channel(type=artifact_type)


def test_spec_carries_the_parameters():
  pusher = component.EdgeTpuPusher(
      model=_channel(standard_artifacts.Model),
      model_blessing=_channel(standard_artifacts.ModelBlessing),
      push_destination="gs://bucket/models",
      compiler_flags=["-a"],
      require_edgetpu=True,
      compiler_timeout_seconds=30,
      min_runtime_version=14)
  properties = pusher.exec_properties
  assert properties[constants.PUSH_DESTINATION_KEY] == "gs://bucket/models"
  assert executor.parse_compiler_flags(properties[constants.COMPILER_FLAGS_KEY]) == ["-a"]
  assert properties[constants.REQUIRE_EDGETPU_KEY] is True
  assert properties[constants.REQUIRE_FULL_EDGETPU_MAPPING_KEY] is True
  assert properties[constants.REQUIRE_EDGETPU_ON_CHIP_KEY] is True
  assert properties[constants.MIN_RUNTIME_VERSION_KEY] == 14
  assert properties[constants.IO_DTYPE_KEY] == "uint8"
  assert properties[constants.COMPILER_TIMEOUT_SECONDS_KEY] == 30
  assert properties[constants.COMPILER_PATH_KEY] == ""
  assert (pusher.outputs[standard_component_specs.PUSHED_MODEL_KEY].type ==
          standard_artifacts.PushedModel)
  assert standard_component_specs.EVALUATION_KEY not in pusher.inputs


def test_bad_compiler_flags_are_rejected():
  with pytest.raises(ValueError, match="JSON list of strings"):
    executor.parse_compiler_flags('{"-m": 13}')
  with pytest.raises(ValueError, match="use the min_runtime_version setting"):
    component.EdgeTpuPusher(model=_channel(standard_artifacts.Model),
                            model_blessing=_channel(standard_artifacts.ModelBlessing),
                            push_destination="/models", compiler_flags=["-m", "13"])


def test_runs_in_a_local_pipeline(tmp_path, trained_model_dir, monkeypatch):
  monkeypatch.setenv("PATH", "/usr/bin:/bin")  # No edgetpu_compiler: a CPU-only push.
  assert edgetpu_compiler.find_compiler() is None
  model_uri = str(tmp_path / "model")
  shutil.copytree(trained_model_dir, path_utils.serving_model_dir(model_uri))
  sha256 = hashlib.sha256(int8_tflite.convert_to_int8_tflite(
      path_utils.serving_model_path(model_uri))).hexdigest()
  blessing_uri = str(tmp_path / "blessing")
  os.makedirs(blessing_uri)

  model_importer = tfx.dsl.Importer(
      source_uri=model_uri, artifact_type=standard_artifacts.Model).with_id("model_importer")
  blessing_importer = tfx.dsl.Importer(
      source_uri=blessing_uri, artifact_type=standard_artifacts.ModelBlessing,
      custom_properties={
          tfx_evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY:
              tfx_evaluator_constants.BLESSED_VALUE,
          evaluator_constants.TFLITE_SHA256_PROPERTY: sha256,
          evaluator_constants.BLESSING_MESSAGE_PROPERTY: "blessed: imported for the test",
      }).with_id("blessing_importer")
  destination = str(tmp_path / "serving")
  pusher = component.EdgeTpuPusher(
      model=model_importer.outputs["result"],
      model_blessing=blessing_importer.outputs["result"],
      push_destination=destination)
  metadata_path = str(tmp_path / "metadata.sqlite")
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name="pusher_test", pipeline_root=str(tmp_path / "root"),
      components=[model_importer, blessing_importer, pusher],
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          metadata_path)))

  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  store = metadata_store.MetadataStore(config)
  [pushed] = store.get_artifacts_by_type(standard_artifacts.PushedModel.TYPE_NAME)
  properties = {key: value.string_value or value.int_value
                for key, value in pushed.custom_properties.items()}
  version_dir = os.path.join(destination, "1")
  assert properties[constants.PUSHED_KEY] == 1
  assert properties[constants.PUSHED_VERSION_KEY] == "1"
  assert properties[constants.PUSHED_DESTINATION_KEY] == version_dir
  assert properties[constants.EDGETPU_STATUS_KEY] == edgetpu_compiler.NOT_INSTALLED_MESSAGE
  assert properties[evaluator_constants.TFLITE_SHA256_PROPERTY] == sha256
  with open(os.path.join(version_dir, push_manifest.FILE_NAME)) as f:
    manifest = json.load(f)
  assert manifest["files"][push_manifest.MODEL_FILE]["sha256"] == sha256
  assert sorted(os.listdir(pushed.uri)) == sorted(os.listdir(version_dir))
