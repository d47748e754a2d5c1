"""Int8Evaluator in real TFX pipelines (LocalDagRunner, SQLite MLMD), with the blessed-model
Resolver."""

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


def build_pipeline(root, examples_uri, model_uri, with_baseline=True, **evaluator_params):
  """Imports examples and a model, resolves the latest blessed model and evaluates.

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
  nodes = [examples, model]
  baseline_model = None
  if with_baseline:
    resolver = tfx_v1.dsl.Resolver(
        strategy_class=tfx_v1.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx_v1.dsl.Channel(type=standard_artifacts.Model),
        model_blessing=tfx_v1.dsl.Channel(type=standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    nodes.append(resolver)
    baseline_model = resolver.outputs["model"]
  evaluator = component.Int8Evaluator(examples=examples.outputs["result"],
                                      model=model.outputs["result"], baseline_model=baseline_model,
                                      **evaluator_params)
  return tfx_v1.dsl.Pipeline(
      pipeline_name=PIPELINE_NAME, pipeline_root=str(root / "pipeline_root"),
      metadata_connection_config=mlmd_config(root),
      components=[*nodes, evaluator])


def mlmd_config(root):
  return tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(str(root / "mlmd.sqlite"))


def artifacts(store, type_name):
  return sorted(store.get_artifacts_by_type(type_name), key=lambda a: a.id)


def evaluator_executions(store):
  return store.get_executions_by_type(component.Int8Evaluator.get_class_type())


def test_second_run_compares_against_first_runs_blessed_model(tmp_path, examples_dir,
                                                              trained_model_uri,
                                                              untrained_model_uri):
  runner = tfx_v1.orchestration.LocalDagRunner()
  runner.run(build_pipeline(tmp_path, examples_dir, trained_model_uri,
                            min_int8_accuracy=0.85, max_quantization_drop=0.02))
  # Only the baseline check can fail the second, untrained model.
  runner.run(build_pipeline(tmp_path, examples_dir, untrained_model_uri,
                            min_int8_accuracy=0.0, max_quantization_drop=1.0))

  store = mlmd.MetadataStore(mlmd_config(tmp_path))
  first_model, second_model = artifacts(store, standard_artifacts.Model.TYPE_NAME)
  first_blessing, second_blessing = artifacts(store, standard_artifacts.ModelBlessing.TYPE_NAME)
  assert first_blessing.custom_properties["blessed"].int_value == 1
  assert first_blessing.custom_properties["current_model_id"].int_value == first_model.id
  assert "baseline_model_id" not in first_blessing.custom_properties
  assert second_blessing.custom_properties["blessed"].int_value == 0
  assert second_blessing.custom_properties["current_model_id"].int_value == second_model.id
  assert second_blessing.custom_properties["baseline_model_id"].int_value == first_model.id

  first_evaluation, second_evaluation = artifacts(store,
                                                  standard_artifacts.ModelEvaluation.TYPE_NAME)
  metrics = []
  for evaluation in (first_evaluation, second_evaluation):
    with open(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME)) as f:
      metrics.append(json.load(f))
  assert metrics[0]["baseline"] is None
  assert metrics[1]["baseline"]["model"]["id"] == first_model.id
  # The baseline's int8 model was re-evaluated on the same data: same bytes, same accuracy.
  assert metrics[1]["baseline"]["int8"]["tflite_sha256"] == metrics[0]["int8"]["tflite_sha256"]
  assert metrics[1]["baseline"]["int8"]["accuracy"] == metrics[0]["int8"]["accuracy"]
  baseline_accuracy = metrics[0]["int8"]["accuracy"]
  assert (f"FAILED int8 accuracy {metrics[1]['int8']['accuracy']:.4f} < baseline int8 accuracy "
          f"{baseline_accuracy:.4f}") in metrics[1]["reason"]
  message = second_blessing.custom_properties[constants.BLESSING_MESSAGE_PROPERTY].string_value
  assert message == metrics[1]["reason"]
  assert os.listdir(second_blessing.uri) == ["NOT_BLESSED"]


def test_failed_evaluation_is_failed_in_mlmd_and_publishes_no_blessing(tmp_path, examples_dir,
                                                                       wrong_signature_model_uri):
  with pytest.raises(Exception, match="lacks the signature 'predict_images'"):
    tfx_v1.orchestration.LocalDagRunner().run(
        build_pipeline(tmp_path, examples_dir, wrong_signature_model_uri, with_baseline=False))

  store = mlmd.MetadataStore(mlmd_config(tmp_path))
  [execution] = evaluator_executions(store)
  assert execution.last_known_state == metadata_store_pb2.Execution.FAILED
  assert artifacts(store, standard_artifacts.ModelBlessing.TYPE_NAME) == []
