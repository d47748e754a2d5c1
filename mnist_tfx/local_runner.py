"""Runs the pipeline with TFX's LocalDagRunner: artifacts and SQLite MLMD under one root."""

import os
from typing import Collection, List

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.compiler import compiler
from tfx.proto.orchestration import pipeline_pb2

from pipeline import pipeline as pipeline_def


def default_beam_args() -> List[str]:
  """Multi-processing DirectRunner on every core of this machine (0 = one worker per core)."""
  return ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def metadata_path(pipeline_root: str) -> str:
  return os.path.join(pipeline_root, "metadata.sqlite")


def metadata_config(pipeline_root: str) -> metadata_store_pb2.ConnectionConfig:
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path(pipeline_root))


def compile_ir(pipeline: tfx.dsl.Pipeline,
               always_run: Collection[str] = pipeline_def.ALWAYS_RUN) -> pipeline_pb2.Pipeline:
  """The pipeline's IR, with caching off for the nodes in `always_run` (TFX's cache switch is
  pipeline-wide; see pipeline.ALWAYS_RUN)."""
  ir = compiler.Compiler().compile(pipeline)
  for node in ir.nodes:
    if node.pipeline_node.node_info.id in always_run:
      node.pipeline_node.execution_options.caching_options.enable_cache = False
  return ir


def run(pipeline: tfx.dsl.Pipeline) -> None:
  """Runs every component in dependency order; raises on the first failed component."""
  tfx.orchestration.LocalDagRunner().run_with_ir(compile_ir(pipeline))
