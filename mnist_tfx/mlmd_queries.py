"""Reads what a pipeline produced from its ML Metadata store (the run summary and `tensorboard`)."""

from typing import Dict, Optional, Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.compiler import constants
from tfx.types import artifact_utils

# Newest LIVE artifact of each type, keyed by type name (e.g. "Examples", "ModelBlessing").
Artifacts = Dict[str, types.Artifact]


def _newest_by_type(store: metadata_store.MetadataStore, context_id: int) -> Artifacts:
  artifact_types = {t.id: t for t in store.get_artifact_types()}
  newest: Dict[str, metadata_store_pb2.Artifact] = {}
  for artifact in store.get_artifacts_by_context(context_id):
    if artifact.state != metadata_store_pb2.Artifact.LIVE:
      continue
    name = artifact_types[artifact.type_id].name
    if name not in newest or artifact.id > newest[name].id:
      newest[name] = artifact
  return {
      name: artifact_utils.deserialize_artifact(artifact_types[artifact.type_id], artifact)
      for name, artifact in newest.items()
  }


def _pipeline_context(store: metadata_store.MetadataStore,
                      pipeline_name: str) -> Optional[metadata_store_pb2.Context]:
  return store.get_context_by_type_and_name(constants.PIPELINE_CONTEXT_TYPE_NAME, pipeline_name)


def latest_artifacts(connection_config: metadata_store_pb2.ConnectionConfig,
                     pipeline_name: str) -> Artifacts:
  """The newest artifact of every type the pipeline ever published."""
  store = metadata_store.MetadataStore(connection_config)
  context = _pipeline_context(store, pipeline_name)
  return _newest_by_type(store, context.id) if context else {}


def last_run_artifacts(connection_config: metadata_store_pb2.ConnectionConfig,
                       pipeline_name: str) -> Artifacts:
  """The artifacts of the pipeline's most recent run (produced or served from the cache)."""
  store = metadata_store.MetadataStore(connection_config)
  context = _pipeline_context(store, pipeline_name)
  executions = store.get_executions_by_context(context.id) if context else []
  if not executions:
    return {}
  run_type = store.get_context_type(constants.PIPELINE_RUN_CONTEXT_TYPE_NAME)
  newest_execution = max(executions, key=lambda e: e.id)
  for run_context in store.get_contexts_by_execution(newest_execution.id):
    if run_context.type_id == run_type.id:
      return _newest_by_type(store, run_context.id)
  return {}


def node_run_outputs(connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str,
                     node_id: str) -> Tuple[Optional[int], Artifacts]:
  """The state (metadata_store_pb2.Execution.State) and outputs of a component's newest execution.

  (None, {}) when the component has no execution (e.g. a resolver, or before it ran).
  """
  store = metadata_store.MetadataStore(connection_config)
  context = store.get_context_by_type_and_name(constants.NODE_CONTEXT_TYPE_NAME,
                                               f"{pipeline_name}.{node_id}")
  executions = store.get_executions_by_context(context.id) if context else []
  if not executions:
    return None, {}
  execution = max(executions, key=lambda e: e.id)
  output_types = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
  artifact_ids = [event.artifact_id for event in store.get_events_by_execution_ids([execution.id])
                  if event.type in output_types]
  artifact_types = {t.id: t for t in store.get_artifact_types()}
  outputs = {}
  for artifact in store.get_artifacts_by_id(artifact_ids):
    artifact_type = artifact_types[artifact.type_id]
    outputs[artifact_type.name] = artifact_utils.deserialize_artifact(artifact_type, artifact)
  return execution.last_known_state, outputs
