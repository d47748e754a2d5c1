"""`mnist-tfx tensorboard`: TensorBoard on the latest training run and evaluation in ML Metadata."""

import os
from typing import Dict

from ml_metadata.proto import metadata_store_pb2
from tensorboard import program

from components.evaluator import constants as evaluator_constants
from mnist_tfx import mlmd_queries


def find_logdirs(connection_config: metadata_store_pb2.ConnectionConfig,
                 pipeline_name: str) -> Dict[str, str]:
  """Run name -> log directory: the newest Trainer `model_run` and the newest evaluation."""
  artifacts = mlmd_queries.latest_artifacts(connection_config, pipeline_name)
  logdirs = {}
  if "ModelRun" in artifacts:
    logdirs["training"] = artifacts["ModelRun"].uri
  if "ModelEvaluation" in artifacts:
    logdirs["evaluation"] = os.path.join(artifacts["ModelEvaluation"].uri,
                                         evaluator_constants.TENSORBOARD_DIR)
  if not logdirs:
    raise LookupError(f"Pipeline {pipeline_name!r} has no training run in ML Metadata yet; "
                      "run `mnist-tfx run` first (with the same --pipeline-root).")
  return logdirs


def start(logdirs: Dict[str, str], host: str, port: int) -> str:
  """Starts TensorBoard in a background thread of this process; returns its URL."""
  server = program.TensorBoard()
  server.configure(argv=[
      "tensorboard", "--logdir_spec", ",".join(f"{name}:{path}" for name, path in logdirs.items()),
      "--host", host, "--port", str(port)
  ])
  return server.launch()
