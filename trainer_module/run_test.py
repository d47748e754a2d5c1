"""run_fn inside the real TFX Trainer: Importer(slice Examples) -> Trainer on the LocalDagRunner."""

import os

import ml_metadata as mlmd
import pytest
import tensorflow as tf
from tfx import v1 as tfx

from core import contract
from trainer_module import train

pytestmark = pytest.mark.integration  # Runs TFX pipelines or trains models.


def _trainer_pipeline(examples_dir: str, root: str, run_fn: str, custom_config):
  importer = tfx.dsl.Importer(
      source_uri=examples_dir, artifact_type=tfx.types.standard_artifacts.Examples,
      properties={"split_names": '["train", "eval"]'}).with_id("examples_importer")
  trainer = tfx.components.Trainer(
      run_fn=run_fn, examples=importer.outputs["result"],
      train_args=tfx.proto.TrainArgs(splits=[contract.TRAIN_SPLIT]),
      eval_args=tfx.proto.EvalArgs(splits=[contract.EVAL_SPLIT]),
      custom_config=custom_config)
  return tfx.dsl.Pipeline(
      pipeline_name="trainer_test", pipeline_root=os.path.join(root, "pipeline_root"),
      components=[importer, trainer],
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          os.path.join(root, "metadata.sqlite")))


def run_trainer(examples_dir: str, root: str, run_fn: str, custom_config):
  """Runs the pipeline and returns the (Model, ModelRun) artifact URIs the Trainer published."""
  pipeline = _trainer_pipeline(examples_dir, root, run_fn, custom_config)
  tfx.orchestration.LocalDagRunner().run(pipeline)
  store = mlmd.MetadataStore(pipeline.metadata_connection_config)
  (model,) = store.get_artifacts_by_type(tfx.types.standard_artifacts.Model.TYPE_NAME)
  (model_run,) = store.get_artifacts_by_type(tfx.types.standard_artifacts.ModelRun.TYPE_NAME)
  return model.uri, model_run.uri


def test_run_fn_in_the_tfx_trainer(examples_dir, tmp_path):
  model_uri, model_run_uri = run_trainer(examples_dir, str(tmp_path), "trainer_module.run.run_fn",
                                         {"epochs": 1, "batch_size": 32})
  serving_dir = os.path.join(model_uri, "Format-Serving")
  loaded = tf.saved_model.load(serving_dir)
  assert set(loaded.signatures) == {contract.SERVING_SIGNATURE, contract.PREDICT_IMAGES_SIGNATURE,
                                    contract.SINGLE_IMAGE_SIGNATURE}
  assert tf.io.gfile.glob(os.path.join(model_run_uri, contract.MODEL_RUN_TRAIN_DIR, "events.*"))
  assert tf.io.gfile.glob(os.path.join(model_run_uri, train.CHECKPOINT_SUBDIR, "ckpt-1.index"))
