"""EdgeTpuPusher executor: ships the blessed full-int8 model, compiled for the Edge TPU when it can.

Steps, every check before anything is written to the destination:
  1. Not blessed (TFX's `CheckBlessing`) -> PushedModel `pushed` = 0 with the blessing's reason.
  2. Convert the SavedModel with the shared int8 conversion and the evaluator's `io_dtype`; its
     sha256 must equal the blessing's `int8_tflite_sha256` (the bytes the evaluator measured).
  3. Check Edge TPU compatibility on the flatbuffer (fails by default unless everything maps), and
     that the model's I/O types can run on `min_runtime_version`.
  4. Run edgetpu_compiler with `-m min_runtime_version` when installed (fails on errors, timeouts
     and, by default, partial mapping, off-chip parameters or a split graph); when it is not
     installed push the CPU int8 model and say so, or fail when `require_edgetpu`.
  5. Publish DEST/<version>/ atomically (versioned_push): model.tflite, labels.txt (Coral's label
     file), the compiler's output and model.json, and copy the version into the PushedModel
     artifact for lineage, like TFX's Pusher. When the latest version already holds the same files
     (a re-run with unchanged inputs), nothing is published: that version is recorded as the push,
     with `new_version_published` = 0 and a reason saying so.
A failed check raises, so the execution fails and publishes no PushedModel.

The executor subclasses TFX's Pusher executor, as TFX's own cloud pushers and tfx-addons'
HuggingFace pusher do: the blessing check, the model path and the `pushed` / `pushed_destination` /
`pushed_version` properties are TFX's; only what is pushed, and how, is ours.
"""

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils

from components.evaluator import constants as evaluator_constants
from components.pusher import constants
from components.pusher import edgetpu_compatibility
from components.pusher import edgetpu_compiler
from components.pusher import edgetpu_package
from components.pusher import versioned_push
from core import config_values
from core import contract
from core import errors
from core import evaluation_metrics
from core import hashing
from core import int8_tflite
from core import push_manifest


class PushError(errors.PipelineInputError):
  """The blessed model cannot be pushed; nothing was written to the destination."""


def parse_compiler_flags(value: Any) -> List[str]:
  """The extra compiler flags: a JSON list of strings (or a list)."""
  if value is None or value == "":
    return []
  flags = json.loads(value) if isinstance(value, str) else value
  if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
    raise ValueError(f"{constants.COMPILER_FLAGS_KEY} must be a JSON list of strings, got "
                     f"{value!r}")
  return flags


def _flag(exec_properties: Dict[str, Any], key: str, default: bool) -> bool:
  """A boolean execution parameter (Kubeflow may pass it as text); unset means `default`."""
  value = exec_properties.get(key)
  return default if value is None or value == "" else config_values.parse_bool(key, value)


def _read_evaluation(evaluations: Optional[List[types.Artifact]]
                     ) -> Optional[push_manifest.EvaluationRef]:
  """The evaluation that blessed the model, for model.json (its metrics None when it has none)."""
  if not evaluations:
    return None
  evaluation = artifact_utils.get_single_instance(evaluations)
  metrics_path = os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME)
  if not fileio.exists(metrics_path):
    logging.warning("Evaluation %s has no %s; model.json carries no metrics.", evaluation.uri,
                    evaluation_metrics.FILE_NAME)
    return push_manifest.EvaluationRef(uri=evaluation.uri, metrics=None)
  with fileio.open(metrics_path, "rb") as f:
    metrics = evaluation_metrics.from_json(f.read(), metrics_path)
  return push_manifest.EvaluationRef(uri=evaluation.uri, metrics=metrics)


def _checked_runtime_version(model_content: bytes, exec_properties: Dict[str, Any]) -> int:
  """The min_runtime_version setting, after checking the model's I/O types can run on it."""
  version = int(exec_properties.get(constants.MIN_RUNTIME_VERSION_KEY) or
                constants.DEFAULT_MIN_RUNTIME_VERSION)
  io = edgetpu_compatibility.describe_io(model_content)
  problem = edgetpu_package.runtime_version_problem(
      version, [tensor["dtype"] for tensor in io["inputs"] + io["outputs"]])
  if problem:
    raise PushError(f"{constants.MIN_RUNTIME_VERSION_KEY}={version}: {problem}")
  return version


def _manifest_writer(model: types.Artifact, blessing: types.Artifact,
                     evaluation: Optional[push_manifest.EvaluationRef], files: Dict[str, bytes],
                     compatibility: edgetpu_compatibility.CompatibilityReport,
                     edgetpu: Dict[str, Any]):
  """The function versioned_push calls with the version number to get model.json's bytes."""
  io = edgetpu_compatibility.describe_io(files[push_manifest.MODEL_FILE])

  def manifest(version: int) -> bytes:
    return push_manifest.PushManifest(
        version=version,
        pushed_at=push_manifest.utc_now(),
        source_model_uri=model.uri,
        source_model_id=model.id,
        model_blessing_uri=blessing.uri,
        files={name: push_manifest.FileEntry(sha256=hashing.sha256_bytes(content),
                                             size_bytes=len(content))
               for name, content in files.items()},
        input=io["inputs"][0],
        output=io["outputs"][0],
        labels=list(contract.LABELS),
        evaluation=evaluation,
        edgetpu_compatibility=compatibility.to_dict(),
        edgetpu=edgetpu,
    ).to_json()
  return manifest


class Executor(tfx_pusher_executor.Executor):
  """Pushes the blessed int8 TFLite model (and its Edge TPU compilation) to a version directory."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    pushed_model = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
    blessing = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.MODEL_BLESSING_KEY])
    destination = exec_properties[constants.PUSH_DESTINATION_KEY]
    if not destination:
      raise ValueError(f"{constants.PUSH_DESTINATION_KEY} is empty")

    if not self.CheckBlessing(input_dict):
      reason = (blessing.get_string_custom_property(
          evaluator_constants.BLESSING_MESSAGE_PROPERTY) or
                f"ModelBlessing {blessing.uri} is not blessed")
      logging.info("Not pushing model %s: %s", model.uri, reason)
      self._MarkNotPushed(pushed_model)
      pushed_model.set_string_custom_property(constants.REASON_KEY, reason)
      return

    io_dtype = contract.check_io_dtype(
        exec_properties.get(constants.IO_DTYPE_KEY) or contract.DEFAULT_IO_DTYPE)
    model_content = self._blessed_int8_model(self.GetModelPath(input_dict), blessing, io_dtype)
    compatibility = edgetpu_compatibility.check_edgetpu_compatibility(model_content)
    logging.info("Edge TPU compatibility: %s\n%s", compatibility.summary(),
                 compatibility.format_log())
    require_full_mapping = _flag(exec_properties, constants.REQUIRE_FULL_EDGETPU_MAPPING_KEY,
                                 constants.DEFAULT_REQUIRE_FULL_EDGETPU_MAPPING)
    if require_full_mapping and not compatibility.fully_mapped:
      raise PushError(f"the int8 model would not map completely to the Edge TPU: "
                      f"{compatibility.summary()} (set "
                      f"{constants.REQUIRE_FULL_EDGETPU_MAPPING_KEY}=False to push it anyway)")
    min_runtime_version = _checked_runtime_version(model_content, exec_properties)

    edgetpu, edgetpu_files = self._compile(model_content, exec_properties, require_full_mapping,
                                           min_runtime_version)
    files = {push_manifest.MODEL_FILE: model_content,
             push_manifest.LABELS_FILE: push_manifest.labels_file_content(contract.LABELS),
             **edgetpu_files}
    manifest = _manifest_writer(
        model, blessing, _read_evaluation(input_dict.get(standard_component_specs.EVALUATION_KEY)),
        files, compatibility, edgetpu)

    # A re-run with unchanged inputs blesses the same bytes again: record the version holding
    # them as this push instead of publishing a duplicate. (The compiler log carries timings.)
    identical = versioned_push.identical_latest_version(
        destination, files,
        ignored_names=(push_manifest.FILE_NAME, push_manifest.COMPILER_LOG_FILE))
    if identical:
      version, version_dir = identical
      logging.info("Not publishing: version %d at %s already holds these files.", version,
                   version_dir)
      pushed_model.set_string_custom_property(constants.REASON_KEY,
                                              constants.identical_reason(version))
    else:
      version, version_dir = versioned_push.publish_version(destination, files,
                                                            push_manifest.FILE_NAME, manifest)
      logging.info("Pushed version %d to %s (%s).", version, version_dir, edgetpu["status"])
    io_utils.copy_dir(version_dir, pushed_model.uri)  # Archive with the artifact, like TFX.
    self._MarkPushed(pushed_model, pushed_destination=version_dir, pushed_version=str(version))
    pushed_model.set_int_custom_property(constants.NEW_VERSION_PUBLISHED_KEY, int(not identical))
    pushed_model.set_int_custom_property(constants.EDGETPU_COMPILED_KEY, int(edgetpu["compiled"]))
    pushed_model.set_string_custom_property(constants.EDGETPU_STATUS_KEY, edgetpu["status"])
    pushed_model.set_string_custom_property(constants.IO_DTYPE_KEY, io_dtype)
    pushed_model.set_string_custom_property(evaluator_constants.TFLITE_SHA256_PROPERTY,
                                            hashing.sha256_bytes(model_content))

  @staticmethod
  def _blessed_int8_model(saved_model_path: str, blessing: types.Artifact, io_dtype: str) -> bytes:
    """Converts the model and checks the bytes are the ones the evaluator blessed."""
    blessed_sha256 = blessing.get_string_custom_property(
        evaluator_constants.TFLITE_SHA256_PROPERTY)
    if not blessed_sha256:
      raise PushError(f"ModelBlessing {blessing.uri} has no "
                      f"{evaluator_constants.TFLITE_SHA256_PROPERTY!r}: it does not say which "
                      "int8 bytes were evaluated")
    model_content = int8_tflite.convert_to_int8_tflite(saved_model_path, io_dtype=io_dtype)
    sha256 = hashing.sha256_bytes(model_content)
    if sha256 != blessed_sha256:
      raise PushError(f"the int8 conversion of {saved_model_path} with {io_dtype} input and output "
                      f"has sha256 {sha256}, but ModelBlessing {blessing.uri} blessed "
                      f"{blessed_sha256}: refusing to push bytes that were not evaluated (do the "
                      f"evaluator and the pusher have the same {constants.IO_DTYPE_KEY}?)")
    return model_content

  @staticmethod
  def _compile(model_content: bytes, exec_properties: Dict[str, Any], require_full_mapping: bool,
               min_runtime_version: int) -> Tuple[Dict[str, Any], Dict[str, bytes]]:
    """Runs edgetpu_compiler; returns the Edge TPU part of model.json and the files to push."""
    require_edgetpu = _flag(exec_properties, constants.REQUIRE_EDGETPU_KEY,
                            constants.DEFAULT_REQUIRE_EDGETPU)
    compiler = edgetpu_compiler.find_compiler(
        exec_properties.get(constants.COMPILER_PATH_KEY) or None)
    if compiler is None:
      if require_edgetpu:
        raise PushError(f"{edgetpu_compiler.NOT_INSTALLED_MESSAGE} and "
                        f"{constants.REQUIRE_EDGETPU_KEY} is set; install it (Coral apt "
                        f"repository, x86-64 Linux) or set {constants.COMPILER_PATH_KEY}")
      logging.warning("%s: pushing the CPU int8 model only.",
                      edgetpu_compiler.NOT_INSTALLED_MESSAGE)
      return {"compiled": False, "status": edgetpu_compiler.NOT_INSTALLED_MESSAGE}, {}
    compilation = edgetpu_compiler.compile_for_edgetpu(
        compiler, model_content,
        parse_compiler_flags(exec_properties.get(constants.COMPILER_FLAGS_KEY)),
        float(exec_properties.get(constants.COMPILER_TIMEOUT_SECONDS_KEY) or
              constants.DEFAULT_COMPILER_TIMEOUT_SECONDS),
        min_runtime_version=min_runtime_version)
    report = compilation.report
    if require_full_mapping and not report.fully_mapped:
      raise PushError(f"edgetpu_compiler did not map every operation: {report.summary()} (set "
                      f"{constants.REQUIRE_FULL_EDGETPU_MAPPING_KEY}=False to push it anyway)\n"
                      f"{compilation.log}")
    if report.slowdowns() and _flag(exec_properties, constants.REQUIRE_EDGETPU_ON_CHIP_KEY,
                                    constants.DEFAULT_REQUIRE_EDGETPU_ON_CHIP):
      raise PushError(f"edgetpu_compiler's output would run slowly: "
                      f"{'; '.join(report.slowdowns())} ({report.summary()}; set "
                      f"{constants.REQUIRE_EDGETPU_ON_CHIP_KEY}=False to push it anyway)\n"
                      f"{compilation.log}")
    return ({"compiled": True, "status": f"compiled: {report.summary()}",
             "compiler": report.to_dict()},
            {push_manifest.EDGETPU_MODEL_FILE: compilation.compiled_model,
             push_manifest.COMPILER_LOG_FILE: compilation.log.encode("utf-8")})
