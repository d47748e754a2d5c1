"""Runs the pipeline with TFX's LocalDagRunner: artifacts and SQLite MLMD under one root."""

import os
from typing import List

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx


def default_beam_args() -> List[str]:
  """Multi-processing DirectRunner on every core of this machine (0 = one worker per core)."""
  return ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def metadata_path(pipeline_root: str) -> str:
  return os.path.join(pipeline_root, "metadata.sqlite")


def metadata_config(pipeline_root: str) -> metadata_store_pb2.ConnectionConfig:
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path(pipeline_root))


def run(pipeline: tfx.dsl.Pipeline) -> None:
  """Runs every component in dependency order; raises on the first failed component."""
  tfx.orchestration.LocalDagRunner().run(pipeline)
