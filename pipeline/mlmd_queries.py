"""Reads what a pipeline produced from its ML Metadata store (the run summary and `tensorboard`)."""

from typing import Dict, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import constants

Artifacts = Dict[str, metadata_store_pb2.Artifact]


def _newest_by_type(store: metadata_store.MetadataStore, context_id: int) -> Artifacts:
  type_names = {t.id: t.name for t in store.get_artifact_types()}
  newest: Artifacts = {}
  for artifact in store.get_artifacts_by_context(context_id):
    if artifact.state != metadata_store_pb2.Artifact.LIVE:
      continue
    name = type_names[artifact.type_id]
    if name not in newest or artifact.id > newest[name].id:
      newest[name] = artifact
  return newest


def latest_artifacts(connection_config: metadata_store_pb2.ConnectionConfig,
                     pipeline_name: str) -> Artifacts:
  """The newest LIVE artifact of every type the pipeline ever published, keyed by type name."""
  store = metadata_store.MetadataStore(connection_config)
  context = store.get_context_by_type_and_name(constants.PIPELINE_CONTEXT_TYPE_NAME, pipeline_name)
  return _newest_by_type(store, context.id) if context else {}


def last_run_artifacts(connection_config: metadata_store_pb2.ConnectionConfig,
                       pipeline_name: str) -> Artifacts:
  """The artifacts of the pipeline's most recent run (produced or served from the cache)."""
  store = metadata_store.MetadataStore(connection_config)
  context = store.get_context_by_type_and_name(constants.PIPELINE_CONTEXT_TYPE_NAME, pipeline_name)
  if context is None:
    return {}
  executions = store.get_executions_by_context(context.id)
  if not executions:
    return {}
  newest = max(executions, key=lambda e: e.id)
  run_contexts = [
      c for c in store.get_contexts_by_execution(newest.id)
      if c.type_id == store.get_context_type(constants.PIPELINE_RUN_CONTEXT_TYPE_NAME).id
  ]
  return _newest_by_type(store, run_contexts[0].id) if run_contexts else {}


def custom_property(artifact: metadata_store_pb2.Artifact, key: str) -> Optional[object]:
  """A custom property's value (int, float or string), or None when absent."""
  if key not in artifact.custom_properties:
    return None
  value = artifact.custom_properties[key]
  return getattr(value, value.WhichOneof("value"))
