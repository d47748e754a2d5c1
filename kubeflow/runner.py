"""Compiles `pipeline.pipeline.create_pipeline` into a Kubeflow Pipelines v2 pipeline spec.

Every component runs in the image built from `kubeflow/Dockerfile` (this project installed from
its wheel) through our entrypoint (`python -m mnist_tfx.kubeflow.entrypoint`, which adapts what the
open-source KFP v2 launcher passes, then runs TFX's Kubeflow v2 executor runner). Kubeflow brings
its own ML Metadata, so no connection config is passed. Beam-based components use the runner given
in `beam_pipeline_args` (e.g. Dataflow or Flink).

Every path the spec carries is one the pods can read: the pipeline root, the data and the push
destination are remote URIs (or paths the user says are mounted in every pod), the trainer's
checkpoints live under the pipeline root, and the curated schema is named as package data of the
installed project (`python-package://pipeline/schema/schema.pbtxt`), resolved inside the container.
"""

import json
import os
from typing import Any, Dict, List, Mapping, Optional

from core.errors import PipelineInputError
from pipeline import configs

from . import entrypoint

SPEC_FILE_NAME = "pipeline.yaml"
JSON_SUFFIX = ".json"
YAML_SUFFIXES = (".yaml", ".yml")
# The container command of every component (overrides the image's ENTRYPOINT, so the spec says
# what runs).
ENTRYPOINT_COMMAND = ["python", "-m", "mnist_tfx.kubeflow.entrypoint"]


def schema_uri() -> str:
  """The curated schema as package data of the installed `pipeline` package."""
  import pipeline as pipeline_package
  from pipeline import pipeline as pipeline_def
  package_dir = os.path.dirname(os.path.abspath(pipeline_package.__file__))
  relative = os.path.relpath(pipeline_def.SCHEMA_FILE, package_dir)
  return entrypoint.package_data_uri("pipeline", relative.replace(os.sep, "/"))


def check_pod_paths(paths: Mapping[str, Optional[str]], mounted_in_pods: bool) -> None:
  """Refuses paths the pods could not read.

  Args:
    paths: {option name: path}; None values are skipped.
    mounted_in_pods: the user says absolute local paths are mounted at the same place in every pod.

  Raises:
    PipelineInputError: a relative path, or a local one without `mounted_in_pods`.
  """
  for option, path in paths.items():
    if path is None or "://" in path:
      continue
    if not os.path.isabs(path):
      raise PipelineInputError(
          f"{option} {path!r} is relative: the pods have no such working directory. Give a URI "
          "the cluster can reach (e.g. gs://bucket/dir).")
    if not mounted_in_pods:
      raise PipelineInputError(
          f"{option} {path!r} is a path on this machine, which the pods cannot read. Give a URI "
          "the cluster can reach (e.g. gs://bucket/dir), or pass --paths-mounted-in-pods if this "
          "path is mounted at the same place in every pod.")


def compile_pipeline(output_file: str, image: str, pipeline_root: str, data_dir: str,
                     beam_pipeline_args: Optional[List[str]] = None,
                     pipeline_name: str = configs.PIPELINE_NAME,
                     paths_mounted_in_pods: bool = False,
                     **pipeline_kwargs: Any) -> Dict[str, Any]:
  """Writes the pipeline spec to OUTPUT_FILE and returns the PipelineJob as a dict.

  A `.yaml`/`.yml` file holds the PipelineSpec (what the KFP UI and `kfp.Client` upload), with the
  pipeline root as its `defaultPipelineRoot`; a `.json` file holds the whole PipelineJob TFX writes
  (PipelineSpec plus runtimeConfig, the format Vertex AI takes). Paths are checked before anything
  is written, and the file is replaced only once complete.

  Args:
    output_file: where the spec goes (.yaml, .yml or .json).
    image: the container image every component runs in.
    pipeline_root, data_dir: URIs the cluster can write / read (e.g. gs://...).
    beam_pipeline_args: Beam options for every Beam-based component.
    pipeline_name: the pipeline's name.
    paths_mounted_in_pods: accept absolute local paths (mounted in every pod).
    **pipeline_kwargs: any other `create_pipeline` argument (training, blessing, push settings).

  Raises:
    PipelineInputError: a path the pods could not read, or an unknown file suffix.
  """
  from tfx import v1 as tfx

  from pipeline import pipeline as pipeline_def
  if not output_file.endswith(YAML_SUFFIXES + (JSON_SUFFIX,)):
    raise PipelineInputError(f"{output_file!r}: the spec file must end in .yaml, .yml or .json.")
  check_pod_paths({"--pipeline-root": pipeline_root, "--data-dir": data_dir,
                   "--push-destination": pipeline_kwargs.get("push_destination")},
                  paths_mounted_in_pods)
  pipeline_kwargs.setdefault("schema_file", schema_uri())
  pipeline = pipeline_def.create_pipeline(
      pipeline_root=pipeline_root, data_dir=data_dir, pipeline_name=pipeline_name,
      beam_pipeline_args=beam_pipeline_args, **pipeline_kwargs)
  # Pipeline spec 2.1 puts each task's inputDefinitions into its arguments, which the entrypoint
  # needs to restore the input types the open-source launcher drops.
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image, default_commands=ENTRYPOINT_COMMAND, use_pipeline_spec_2_1=True))
  job = runner.run(pipeline, write_out=False)
  job["pipelineSpec"]["defaultPipelineRoot"] = pipeline_root
  output_dir = os.path.dirname(os.path.abspath(output_file))
  os.makedirs(output_dir, exist_ok=True)
  partial = output_file + ".partial"
  with open(partial, "w") as f:
    if output_file.endswith(JSON_SUFFIX):
      json.dump(job, f, sort_keys=True, indent=1)
    else:
      import yaml
      yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)
  os.replace(partial, output_file)
  return job

