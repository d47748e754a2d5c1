"""Int8Evaluator in real TFX pipelines (LocalDagRunner, SQLite MLMD). Its comparison with a
deployed version made by the real pusher is tested in tests/deployed_baseline_test.py."""

import json
import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
import pytest
import tfx
from tfx import v1 as tfx_v1
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.evaluator import component
from components.evaluator import constants
from core import contract
from core import evaluation_metrics

pytestmark = pytest.mark.integration  # Runs TFX pipelines or trains models.

PIPELINE_NAME = "int8_evaluator_test"


def build_pipeline(root, examples_uri, model_uri, **evaluator_params):
  """Imports examples and a model and evaluates.

  The imports carry the current tfx_version so TFX reads them in today's layout (Split-eval/,
  Format-Serving/), as it does the outputs of ExampleGen and Trainer.
  """
  version = {artifact_utils.ARTIFACT_TFX_VERSION_CUSTOM_PROPERTY_KEY: tfx.__version__}
  examples = tfx_v1.dsl.Importer(
      source_uri=examples_uri, artifact_type=standard_artifacts.Examples,
      properties={"split_names": artifact_utils.encode_split_names(
          [contract.TRAIN_SPLIT, contract.EVAL_SPLIT])},
      custom_properties=version).with_id("examples_importer")
  model = tfx_v1.dsl.Importer(source_uri=model_uri, artifact_type=standard_artifacts.Model,
                              custom_properties=version).with_id("model_importer")
  evaluator = component.Int8Evaluator(examples=examples.outputs["result"],
                                      model=model.outputs["result"], **evaluator_params)
  return tfx_v1.dsl.Pipeline(
      pipeline_name=PIPELINE_NAME, pipeline_root=str(root / "pipeline_root"),
      metadata_connection_config=mlmd_config(root),
      components=[examples, model, evaluator])


def mlmd_config(root):
  return tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(str(root / "mlmd.sqlite"))


def artifacts(store, type_name):
  return sorted(store.get_artifacts_by_type(type_name), key=lambda a: a.id)


def evaluator_executions(store):
  return store.get_executions_by_type(component.Int8Evaluator.get_class_type())


def test_blessing_in_mlmd_names_the_verdict_and_the_empty_destination(tmp_path, examples_dir,
                                                                      trained_model_uri):
  destination = str(tmp_path / "pushed_models")
  tfx_v1.orchestration.LocalDagRunner().run(build_pipeline(
      tmp_path, examples_dir, trained_model_uri, push_destination=destination,
      min_int8_accuracy=0.85, max_quantization_drop=0.02))

  store = mlmd.MetadataStore(mlmd_config(tmp_path))
  [model] = artifacts(store, standard_artifacts.Model.TYPE_NAME)
  [blessing] = artifacts(store, standard_artifacts.ModelBlessing.TYPE_NAME)
  [evaluation] = artifacts(store, standard_artifacts.ModelEvaluation.TYPE_NAME)
  [execution] = evaluator_executions(store)
  assert execution.custom_properties[constants.PUSH_DESTINATION_KEY].string_value == destination
  with open(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME)) as f:
    metrics = json.load(f)
  assert metrics["baseline"] is None and metrics["blessed"]
  assert metrics["reason"].endswith(f"no baseline (nothing deployed in {destination} yet)")
  assert blessing.custom_properties["blessed"].int_value == 1
  assert blessing.custom_properties["current_model_id"].int_value == model.id
  assert "baseline_model" not in blessing.custom_properties
  message = blessing.custom_properties[constants.BLESSING_MESSAGE_PROPERTY].string_value
  assert message == metrics["reason"]
  assert os.listdir(blessing.uri) == ["BLESSED"]


def test_failed_evaluation_is_failed_in_mlmd_and_publishes_no_blessing(tmp_path, examples_dir,
                                                                       wrong_signature_model_uri):
  with pytest.raises(Exception, match="lacks the signature 'predict_images'"):
    tfx_v1.orchestration.LocalDagRunner().run(
        build_pipeline(tmp_path, examples_dir, wrong_signature_model_uri))

  store = mlmd.MetadataStore(mlmd_config(tmp_path))
  [execution] = evaluator_executions(store)
  assert execution.last_known_state == metadata_store_pb2.Execution.FAILED
  assert artifacts(store, standard_artifacts.ModelBlessing.TYPE_NAME) == []
