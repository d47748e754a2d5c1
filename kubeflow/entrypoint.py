"""The container entrypoint of every component on Kubeflow Pipelines v2 (open source and Vertex AI).

Run as `python -m mnist_tfx.kubeflow.entrypoint` with the arguments TFX compiles for its own
`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor` (`--executor_class_path`,
`--json_serialized_invocation_args {{$}}`, `--json_serialized_inputs_spec_args`, Beam args), and
delegates to that runner after adapting what the open-source KFP v2 backend hands it. Nothing in an
installed package's files is edited; the adaptations live here and only in this process.

What the open-source KFP v2 driver and launcher do differently from Vertex AI, and what is done
about it (sources: kubeflow/pipelines' backend source, cited below with its release tags;
tensorflow/tfx#7768, TFX 1.16 + kfp 2.5 on Kubeflow 1.8; the TFX patch of
sky-uk/kfp-operator, provider-service/kfp/tfx-patch, its patches 2, 3, 4 and 7;
kubeflow/pipelines#13476 and its fix under review, kubeflow/pipelines#13537):

1. Input artifacts resolved from ML Metadata arrive with an empty `instanceSchema`
   (backend/src/v2/metadata/client.go, GetOutputArtifactsByExecutionId: `Schema: ""`), or with a
   `system.*` schema title (`system.Dataset`, `system.Model`, `system.Artifact`) that TFX's
   title-to-class table does not know (ImportError on `system.Model`) and that no longer tells
   Examples from Dataset or PushedModel from Model. Each such input's type is restored from the
   task's own `inputDefinitions` (compiled by TFX into `--json_serialized_inputs_spec_args`, so the
   spec must be compiled with `use_pipeline_spec_2_1`) before TFX parses the ExecutorInput.
2. From KFP 2.5 the driver adds an output artifact `executor-logs` typed
   `schemaTitle: system.Artifact` to every task's ExecutorInput (backend/src/v2/driver/driver.go,
   provisionOutputs, 2.5.0 :2024-2038, HEAD :746-760; on by default): the launcher writes the
   task's console into it and uploads it. TFX would parse it as an output of the executor and fail
   on the unknown type. TFX compiles every output it declares with its own `instanceSchema`, so an
   output typed with a `system.*` schema title is the backend's: it is removed from the
   ExecutorInput TFX parses (and so never appears in the ExecutorOutput), and left to the launcher.
3. TensorFlow's legacy GCS filesystem (TF <= 2.16) leaves zero-byte directory-marker objects
   (`.../Format-Serving/`) under output URIs; the launcher of the next task downloads them as files
   and then fails to create the directory of the same name (`mkdir ...: not a directory`). After
   the executor ran, every zero-byte object whose name ends in `/` under an output URI is deleted.
   (kfp-operator's other answer, flattening `Format-Serving/`, changes TFX's model layout and
   breaks Vertex AI; it is not used.) tensorflow-io's s3:// writes no such markers.

And two of ours: a process that touches an s3:// path first imports `pipeline.s3_filesystem` (s3://
for TensorFlow, and the exit status kept: see its docstring), and a parameter whose value is
`python-package://PACKAGE/PATH` names a data file of this project's installed package (the curated
schema, e.g. `python-package://pipeline/schema/schema.pbtxt`) and is replaced by that file's path
inside the container, so that the compiled spec carries no path of the machine that compiled it.
"""

import importlib.resources
import json
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional

from absl import logging

# The open-source backend's schema titles for artifacts whose type it normalised.
SYSTEM_TITLE_PREFIX = "system."
GCS_SCHEME = "gs://"
PACKAGE_DATA_SCHEME = "python-package://"


def package_data_uri(package: str, path: str) -> str:
  """The spec's name for a data file shipped in an installed package, e.g. the schema."""
  return f"{PACKAGE_DATA_SCHEME}{package}/{path}"


def resolve_package_data(uri: str) -> str:
  """The installed file a `python-package://PACKAGE/PATH` URI names.

  Raises:
    FileNotFoundError: the package is installed but lacks the file (a wheel built without its
      package data), or the package itself is missing.
  """
  package, _, path = uri[len(PACKAGE_DATA_SCHEME):].partition("/")
  try:
    resolved = importlib.resources.files(package).joinpath(path)
  except ModuleNotFoundError as e:
    raise FileNotFoundError(f"{uri}: package {package!r} is not installed in this image.") from e
  if not resolved.is_file():
    raise FileNotFoundError(f"{uri}: no file {path!r} in the installed package {package!r} "
                            f"({resolved}); was it built without its package data?")
  return str(resolved)


def resolve_package_data_parameters(executor_input: Dict[str, Any]) -> List[str]:
  """Replaces every `python-package://` string parameter by its installed path; returns keys."""
  resolved = []
  for key, value in executor_input.get("inputs", {}).get("parameterValues", {}).items():
    if isinstance(value, str) and value.startswith(PACKAGE_DATA_SCHEME):
      executor_input["inputs"]["parameterValues"][key] = resolve_package_data(value)
      resolved.append(key)
  return resolved


def _needs_type(artifact_type: Mapping[str, Any]) -> bool:
  """Whether an artifact's `type` (ArtifactTypeSchema as JSON) lost its TFX type."""
  if "instanceSchema" in artifact_type:
    return not artifact_type["instanceSchema"].strip()
  if "schemaTitle" in artifact_type:
    return artifact_type["schemaTitle"].startswith(SYSTEM_TITLE_PREFIX)
  return True


def restore_input_types(executor_input: Dict[str, Any],
                        inputs_spec: Mapping[str, Any]) -> List[str]:
  """Gives every input artifact without a TFX type the type its task declares.

  Args:
    executor_input: the ExecutorInput as a JSON dict (changed in place).
    inputs_spec: the task's ComponentInputsSpec (its `inputDefinitions`) as a JSON dict.

  Returns:
    The input keys whose artifacts were re-typed.

  Raises:
    ValueError: an untyped input the task does not declare (nothing to restore it from).
  """
  declared = inputs_spec.get("artifacts", {})
  restored = []
  for key, artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).items():
    for artifact in artifact_list.get("artifacts", []):
      if not _needs_type(artifact.get("type", {})):
        continue
      if key not in declared:
        raise ValueError(f"Input artifact {key!r} has no TFX type and the task declares no "
                         f"input of that name (declared: {sorted(declared)}).")
      artifact["type"] = dict(declared[key]["artifactType"])
      restored.append(key)
  return restored


def remove_backend_outputs(executor_input: Dict[str, Any]) -> List[str]:
  """Removes the outputs the backend added (typed with a `system.*` schema title, e.g.
  `executor-logs`); returns their keys.

  Args:
    executor_input: the ExecutorInput as a JSON dict (changed in place).
  """
  outputs = executor_input.get("outputs", {}).get("artifacts", {})
  added = sorted(key for key, artifact_list in outputs.items()
                 if any(artifact.get("type", {}).get("schemaTitle", "").startswith(
                     SYSTEM_TITLE_PREFIX) for artifact in artifact_list.get("artifacts", [])))
  for key in added:
    del outputs[key]
  return added


def directory_markers(objects: Mapping[str, int]) -> List[str]:
  """The names, among `{object name: size in bytes}`, of zero-byte directory markers."""
  return sorted(name for name, size in objects.items() if size == 0 and name.endswith("/"))


def delete_gcs_directory_markers(uri: str, client: Optional[Any] = None) -> List[str]:
  """Deletes the zero-byte `.../` marker objects under a gs:// URI; returns the names deleted.

  `client` is a google.cloud.storage.Client (default: one from the pod's credentials). Other
  filesystems have no markers: nothing is done for them.
  """
  if not uri.startswith(GCS_SCHEME):
    return []
  if client is None:
    from google.cloud import storage  # Installed with apache-beam[gcp].
    client = storage.Client()
  bucket_name, _, prefix = uri[len(GCS_SCHEME):].partition("/")
  prefix = prefix.rstrip("/") + "/" if prefix else ""
  bucket = client.bucket(bucket_name)
  blobs = {blob.name: blob for blob in client.list_blobs(bucket_name, prefix=prefix)}
  markers = directory_markers({name: blob.size for name, blob in blobs.items()})
  for name in markers:
    bucket.blob(name).delete()
  if markers:
    logging.info("Deleted %d directory marker(s) under %s", len(markers), uri)
  return markers


def _wrap_translate_executor_output(original: Callable,
                                    delete_markers: Callable[[str], Any]) -> Callable:
  """TFX's `translate_executor_output`, preceded by the directory-marker clean-up."""

  def translate(output_dict, name_from_id):
    for artifacts in output_dict.values():
      for artifact in artifacts:
        delete_markers(artifact.uri)
    return original(output_dict, name_from_id)

  return translate


def adapt_arguments(argv: List[str]) -> List[str]:
  """The arguments with the ExecutorInput adapted: untyped inputs re-typed (see
  `restore_input_types`), the backend's own outputs removed (`remove_backend_outputs`),
  package-data parameters resolved (`resolve_package_data_parameters`).

  Raises:
    ValueError: no ExecutorInput, or an untyped input the task does not declare.
    FileNotFoundError: a package-data parameter names a file the image lacks.
  """
  argv = list(argv)
  if "--json_serialized_invocation_args" not in argv:
    raise ValueError("--json_serialized_invocation_args (the ExecutorInput) is required.")
  invocation_at = argv.index("--json_serialized_invocation_args") + 1
  executor_input = json.loads(argv[invocation_at])
  if "--json_serialized_inputs_spec_args" in argv:
    inputs_spec = json.loads(argv[argv.index("--json_serialized_inputs_spec_args") + 1])
    restored = restore_input_types(executor_input, inputs_spec)
    if restored:
      logging.info("Restored the TFX types of inputs %s from the task's inputDefinitions",
                   sorted(set(restored)))
  removed = remove_backend_outputs(executor_input)
  if removed:
    logging.info("Left the backend's outputs %s to the launcher", removed)
  resolve_package_data_parameters(executor_input)
  argv[invocation_at] = json.dumps(executor_input)
  return argv


def main(argv: Optional[List[str]] = None,
         delete_markers: Callable[[str], Any] = delete_gcs_directory_markers) -> None:
  """Adapts the arguments and runs TFX's Kubeflow v2 executor runner on them."""
  from absl import app
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

  from pipeline import object_store
  argv = sys.argv if argv is None else argv
  object_store.enable_s3_if_needed(argv)  # Before TFX or Beam touch a path.
  argv = adapt_arguments(argv)
  # Called by the runner as `kubeflow_v2_entrypoint_utils.translate_executor_output`: this
  # process's module attribute is replaced, the installed file is not touched.
  kubeflow_v2_entrypoint_utils.translate_executor_output = _wrap_translate_executor_output(
      kubeflow_v2_entrypoint_utils.translate_executor_output, delete_markers)
  app.run(kubeflow_v2_run_executor.main, argv=argv,
          flags_parser=kubeflow_v2_run_executor._parse_flags)  # pylint: disable=protected-access


if __name__ == "__main__":
  main()
