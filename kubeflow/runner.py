"""Compiles `pipeline.pipeline.create_pipeline` into a Kubeflow Pipelines v2 pipeline spec.

Every component runs in the image built from `kubeflow/Dockerfile` (this project installed from
its wheel) through our entrypoint (`python -m mnist_tfx.kubeflow.entrypoint`, which adapts what the
open-source KFP v2 launcher passes, then runs TFX's Kubeflow v2 executor runner). Kubeflow brings
its own ML Metadata, so no connection config is passed. Beam-based components use the runner given
in `beam_pipeline_args` (e.g. Dataflow or Flink).

Every path the spec carries is one the pods can read: the pipeline root, the data and the push
destination are gs:// or s3:// URIs (each task runs in a pod of its own that shares no filesystem
with the others), the trainer's checkpoints live under the pipeline root, and the curated schema is
named as package data of the installed project (`python-package://pipeline/schema/schema.pbtxt`),
resolved inside the container.

What Kubeflow Pipelines' cache key sees (its driver: input artifact ids, parameter values, image,
command and arguments; backend/src/v2/cacheutils/cache.go, GenerateCacheKey) is made to follow what
the tasks compute from: the data (MnistExampleGen's `input_fingerprint`, computed here by reading
the data dir, since custom drivers do not run on Kubeflow), the code (each component's
`code_fingerprint`, pipeline/code_fingerprint.py), and no cache at all for the nodes whose result
depends on what is deployed (pipeline.ALWAYS_RUN). The image is part of the key by name: a mutable
tag is warned about (`mutable_image_warning`).
"""

import dataclasses
import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from core.errors import PipelineInputError
from pipeline import configs
from pipeline import object_store

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


MINIO_SCHEME = "minio://"
OBJECT_STORE_SCHEMES = (object_store.GCS_SCHEME, object_store.S3_SCHEME)
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def check_object_store_uris(paths: Mapping[str, Optional[str]]) -> None:
  """Refuses paths the pods could not read: anything but gs://BUCKET/... and s3://BUCKET/....

  Each task runs in a pod of its own that shares no filesystem with this machine or with the other
  tasks, and the components read and write every path themselves (TensorFlow and Beam), not the
  KFP launcher. The open-source backend accepts gs://, s3:// and minio:// pipeline roots only
  (backend/src/v2/objectstore/config.go, ParseBucketConfig); minio:// is a name only the launcher
  knows, so it is refused with what to pass instead.

  Args:
    paths: {option name: path}; None values are skipped.

  Raises:
    PipelineInputError: naming the option, the path and what to give instead.
  """
  for option, path in paths.items():
    if path is None:
      continue
    if path.startswith(MINIO_SCHEME):
      raise PipelineInputError(
          f"{option} {path!r}: minio:// is a name only the Kubeflow Pipelines launcher knows; the "
          "components reach MinIO through s3://. Pass s3://"
          f"{path[len(MINIO_SCHEME):]} and give the pods MinIO's endpoint and credentials, e.g. "
          "--env AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000 --secret-env "
          "mlpipeline-minio-artifact:accesskey=AWS_ACCESS_KEY_ID --secret-env "
          "mlpipeline-minio-artifact:secretkey=AWS_SECRET_ACCESS_KEY.")
    scheme = next((s for s in OBJECT_STORE_SCHEMES if path.startswith(s)), None)
    if scheme is None or not path[len(scheme):].split("/", 1)[0]:
      raise PipelineInputError(
          f"{option} {path!r} is not an object-store URI: on Kubeflow Pipelines each task runs "
          "in a pod of its own, which shares no filesystem with this machine or the other tasks. "
          "Give gs://BUCKET/PATH or s3://BUCKET/PATH.")


def check_arguments(output_file: str, paths: Mapping[str, Optional[str]],
                    env: Mapping[str, str], secret_env: Sequence["SecretEnv"]) -> None:
  """What `compile_pipeline` refuses before it reads or imports anything heavy (no TensorFlow,
  TFX or network): the spec file's suffix, secrets for a .json spec or as plain variables, and
  paths the pods could not read (`check_object_store_uris`).

  Args:
    output_file: the spec file.
    paths: {option name: path} of the pipeline root, data dir and push destination.
    env, secret_env: as `compile_pipeline` takes them.

  Raises:
    PipelineInputError: naming the file, variable or option and what to give instead.
  """
  if not output_file.endswith(YAML_SUFFIXES + (JSON_SUFFIX,)):
    raise PipelineInputError(f"{output_file!r}: the spec file must end in .yaml, .yml or .json.")
  if secret_env and output_file.endswith(JSON_SUFFIX):
    raise PipelineInputError(f"{output_file!r}: --secret-env needs a .yaml spec; Vertex AI's "
                             "PipelineJob has no Kubernetes platform spec.")
  for name in env:
    if name in SECRET_VARIABLES:
      raise PipelineInputError(
          f"--env {name}: a secret would be stored in the spec in clear; give it with "
          f"--secret-env SECRET:KEY={name} (a Kubernetes secret in the run's namespace).")
  check_object_store_uris(paths)


def mutable_image_warning(image: str) -> Optional[str]:
  """A warning when `image` names a mutable tag (`:latest`, or none, which means latest); None
  for another tag or a digest (`@sha256:...`).

  Kubeflow Pipelines' cache key holds the image by name: steps run before under the same name are
  served from the cache after the image is rebuilt. The code fingerprints cover this project's code,
  not the libraries the image installs.
  """
  if _DIGEST.search(image):
    return None
  tag = image.rsplit("/", 1)[-1].partition(":")[2]
  if tag not in ("", "latest"):
    return None
  return (f"--image {image} {'has no tag' if not tag else 'is tagged latest'}: Kubeflow Pipelines'"
          " cache key holds the image's name, so after a rebuild under the same name every step "
          "whose parameters did not change is served from the cache, whatever the new image "
          "installs. Pin the image by digest (REGISTRY/IMAGE@sha256:...) or give each build a tag "
          "of its own.")


def data_fingerprint(data_dir: str) -> str:
  """MnistExampleGen's input fingerprint of DATA_DIR, read here through fileio.

  Raises:
    PipelineInputError: the directory cannot be read, or holds none of the MNIST files.
  """
  from components.mnist_example_gen import idx
  try:
    fingerprint = idx.input_fingerprint(data_dir)
  except Exception as e:  # pylint: disable=broad-except  # Any filesystem's error: one line.
    raise PipelineInputError(
        f"--data-dir {data_dir!r} could not be read to fingerprint the data for the cache key: "
        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
  if not fingerprint:
    raise PipelineInputError(
        f"--data-dir {data_dir!r} holds none of the MNIST files (the four standard names, "
        "gzipped or raw)")
  return fingerprint


# Secrets never go into the spec's plain env: the backend stores the spec, the UI shows it.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclasses.dataclass(frozen=True)
class SecretEnv:
  """A variable every task's pod takes from a key of a Kubernetes secret in the run's namespace:
  kfp-kubernetes' `use_secret_as_env`, i.e. the platform spec's `secretAsEnv`, which the
  open-source backend's driver applies from 2.0.0 (backend/src/v2/driver/driver.go,
  extendPodSpecPatch: 2.0.0 :502-515, 2.5.0 :893)."""
  secret: str
  key: str
  env_var: str


def pod_environment(job: Dict[str, Any], env: Mapping[str, str],
                    secret_env: Sequence[SecretEnv]) -> Optional[Dict[str, Any]]:
  """Gives every container task the variables `env` (its `container.env`) and returns the
  Kubernetes platform spec that gives them `secret_env` (None when there is none). The variables
  are checked first (`check_arguments`).
  """
  executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
  labels = sorted(label for label, executor in executors.items() if "container" in executor)
  for label in labels if env else ():
    executors[label]["container"]["env"] = [{"name": k, "value": v} for k, v in env.items()]
  if not secret_env:
    return None
  by_secret: Dict[str, List[Dict[str, str]]] = {}
  for item in secret_env:
    by_secret.setdefault(item.secret, []).append({"secretKey": item.key, "envVar": item.env_var})
  secret_as_env = [{"secretName": name, "keyToEnv": keys} for name, keys in by_secret.items()]
  return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
      label: {"secretAsEnv": secret_as_env} for label in labels}}}}}


def _write(output_file: str, job: Dict[str, Any], platform_spec: Optional[Dict[str, Any]]) -> None:
  """The spec file, replaced only once complete: the PipelineJob (.json), or the PipelineSpec
  followed by the platform spec when there is one (.yaml, the documents kfp's client reads),
  plain YAML as KFP's own compiler writes it: an object met twice is written twice, without
  anchors and aliases."""
  import yaml

  class PlainDumper(yaml.SafeDumper):

    def ignore_aliases(self, data: Any) -> bool:
      return True

  os.makedirs(os.path.dirname(os.path.abspath(output_file)), exist_ok=True)
  partial = output_file + ".partial"
  with open(partial, "w") as f:
    if output_file.endswith(JSON_SUFFIX):
      json.dump(job, f, sort_keys=True, indent=1)
    else:
      yaml.dump_all([job["pipelineSpec"]] + ([platform_spec] if platform_spec else []), f,
                    Dumper=PlainDumper, sort_keys=True)
  os.replace(partial, output_file)


def _always_run(job: Dict[str, Any]) -> None:
  """Caching off for the tasks of pipeline.ALWAYS_RUN (TFX compiles one switch for all)."""
  from pipeline import pipeline as pipeline_def
  tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
  for node_id in pipeline_def.ALWAYS_RUN:
    tasks[node_id].pop("cachingOptions", None)


def compile_pipeline(output_file: str, image: str, pipeline_root: str, data_dir: str,
                     beam_pipeline_args: Optional[List[str]] = None,
                     pipeline_name: str = configs.PIPELINE_NAME,
                     env: Optional[Mapping[str, str]] = None,
                     secret_env: Sequence[SecretEnv] = (),
                     **pipeline_kwargs: Any) -> Dict[str, Any]:
  """Writes the pipeline spec to OUTPUT_FILE and returns the PipelineJob as a dict.

  A `.yaml`/`.yml` file holds the PipelineSpec (what the KFP UI and `kfp.Client` upload), with the
  pipeline root as its `defaultPipelineRoot`, then the Kubernetes platform spec when `secret_env`
  is given; a `.json` file holds the whole PipelineJob TFX writes (PipelineSpec plus
  runtimeConfig, the format Vertex AI takes). Paths are checked, and the data
  read for its fingerprint, before anything is written; the file is replaced only once complete.

  Args:
    output_file: where the spec goes (.yaml, .yml or .json).
    image: the container image every component runs in.
    pipeline_root, data_dir: gs:// or s3:// URIs the pods can write / read; this machine must be
      able to read data_dir too (its fingerprint).
    beam_pipeline_args: Beam options for every Beam-based component.
    pipeline_name: the pipeline's name.
    env: variables of every task's container (e.g. AWS_ENDPOINT_URL, AWS_REGION).
    secret_env: variables every task's pod takes from Kubernetes secrets (e.g. the S3
      credentials); .yaml only.
    **pipeline_kwargs: any other `create_pipeline` argument (training, blessing, push settings).

  Raises:
    PipelineInputError: a path the pods could not read, data that cannot be read here (an s3://
      store unreachable, credentials missing or refused, no such bucket, access denied, or none
      of the MNIST files), a pipeline root or push destination in an s3:// bucket that does not
      exist, a secret given as a plain variable, secrets for a .json spec, or an unknown file
      suffix.
  """
  paths = {"--pipeline-root": pipeline_root, "--data-dir": data_dir,
           "--push-destination": pipeline_kwargs.get("push_destination")}
  check_arguments(output_file, paths, env or {}, secret_env)  # Before anything heavy.
  object_store.check_s3_access({"--data-dir": data_dir}, {
      option: path for option, path in paths.items() if option != "--data-dir"})
  from tfx import v1 as tfx

  from pipeline import pipeline as pipeline_def
  object_store.enable_s3_if_needed(paths.values())
  pipeline_kwargs.setdefault("schema_file", schema_uri())
  pipeline = pipeline_def.create_pipeline(
      pipeline_root=pipeline_root, data_dir=data_dir, data_fingerprint=data_fingerprint(data_dir),
      pipeline_name=pipeline_name, beam_pipeline_args=beam_pipeline_args, **pipeline_kwargs)
  # Pipeline spec 2.1 puts each task's inputDefinitions into its arguments, which the entrypoint
  # needs to restore the input types the open-source launcher drops.
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image, default_commands=ENTRYPOINT_COMMAND, use_pipeline_spec_2_1=True))
  job = runner.run(pipeline, write_out=False)
  job["pipelineSpec"]["defaultPipelineRoot"] = pipeline_root
  _always_run(job)
  _write(output_file, job, pod_environment(job, env or {}, secret_env))
  return job

