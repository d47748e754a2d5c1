"""`mnist-tfx tensorboard`: TensorBoard on the latest training run and evaluation in ML Metadata."""

import os
from typing import Dict

from ml_metadata.proto import metadata_store_pb2
from tensorboard import program

from components.evaluator import constants as evaluator_constants
from core import errors
from mnist_tfx import mlmd_queries


def find_logdirs(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
                 pipeline_root: str) -> Dict[str, str]:
  """Run name -> log directory: the newest Trainer `model_run` and the newest evaluation.

  Raises:
    PipelineInputError: the pipeline has neither under `pipeline_root` (no run yet, or another
      root or pipeline name).
  """
  artifacts = mlmd_queries.latest_artifacts(connection_config, pipeline_name)
  logdirs = {}
  if "ModelRun" in artifacts:
    logdirs["training"] = artifacts["ModelRun"].uri
  if "ModelEvaluation" in artifacts:
    logdirs["evaluation"] = os.path.join(artifacts["ModelEvaluation"].uri,
                                         evaluator_constants.TENSORBOARD_DIR)
  if not logdirs:
    raise errors.PipelineInputError(
        f"pipeline {pipeline_name!r} has no training run in the ML Metadata under {pipeline_root} "
        "yet; run `mnist-tfx run` first, with the same --pipeline-root and --pipeline-name")
  return logdirs


def link_logdirs(logdirs: Dict[str, str], serve_dir: str) -> None:
  """Makes SERVE_DIR/<run name> a symbolic link to each log directory.

  TensorBoard then serves one plain --logdir whatever the real paths contain: `--logdir_spec`
  splits its value on commas (and on the first colon of each part), so a pipeline root such as
  "runs, v2" would silently yield no runs.
  """
  for name, path in logdirs.items():
    os.symlink(path, os.path.join(serve_dir, name), target_is_directory=True)


def start(logdirs: Dict[str, str], host: str, port: int, serve_dir: str) -> str:
  """Starts TensorBoard in a background thread of this process; returns its URL.

  `serve_dir` is an empty local directory that must outlive the server (the caller removes it):
  it receives the links of `link_logdirs`, and the runs are named after `logdirs`' keys.
  """
  link_logdirs(logdirs, serve_dir)
  server = program.TensorBoard()
  server.configure(argv=["tensorboard", "--logdir", serve_dir, "--host", host, "--port", str(port)])
  return server.launch()
