"""A test-side stand-in for the Kubeflow Pipelines v2 backend: creates and executes runs of a spec.

NOT Kubeflow Pipelines and not a cluster: it reads the PipelineSpec `mnist-tfx kubeflow compile`
wrote and does, in this process and in subprocesses, what the backend's API server, driver and
launcher do with it, so that a test can show the spec itself runs, task by task, in containers'
terms. Two backends (`Backend`):

OPEN_SOURCE, the open-source backend as of release 2.5.0 (kubeflow/pipelines, backend/src/...;
every rule below cites the Go source at tag 2.5.0):
- Run creation compiles the spec and refuses any executor that is neither a container nor an
  importer, visiting components in sorted task-key order, with the API server's HTTP 500 answer
  (v2/compiler/visitor.go:101,128,143; apiserver/template/v2_template.go:113 "Failed to compile
  job", resource/resource_manager.go:500, server/run_server.go:502; common/util/error.go:366-377
  "Internal error: %+v"). No task runs then. (`check_run_creation`)
- The pipeline root is the run's, else the kfp-launcher default `minio://mlpipeline/v2/artifacts`
  (v2/config/env.go:36-37), and must parse as gs://, s3:// or minio:// (mem:// too)
  (v2/objectstore/config.go:103-126), else the root DAG driver fails the run before any task
  (v2/driver/driver.go:139-142, "driver.RootDAG(...) failed: ..."). The spec's own
  defaultPipelineRoot is never read. Only s3:// roots are executed here (the object store
  stand-in speaks S3).
- Each task gets output URIs ROOT/<pipeline>/<run id>/<task>/<uuid4>/<key>, one uuid per task
  execution, and an extra output `executor-logs` typed system.Artifact (v2/driver/driver.go:
  315-322, provisionOutputs 2010-2052); its output file is the container's
  /tmp/kfp_outputs/output_metadata.json (component/launcher_v2.go:458).
- Inputs are the producers' ML Metadata artifacts: `name` is the artifact id as a decimal string,
  `type` an empty instanceSchema (v2/metadata/converter.go:176-182, client.go:948), `metadata`
  the producer's ExecutorOutput metadata stored as MLMD properties and read back (converter.go:
  133-170: numbers become doubles, booleans 0/1, lists and structs wrapped) plus `display_name`
  and `store_session_info` (client.go:1038-1053). Parameters are the task's constants plus the
  component's defaults (launcher_v2.go:928-950).
- The launcher runs in the task's own container: it downloads every input artifact from the
  object store to /s3/BUCKET/KEY (launcher_v2.go:619-688, 882-896; objectstore/object_store.go:
  123-150, 180-213: every object under the key prefix, a key ending in "/" written as a file),
  creates the output artifacts' parent directories (launcher_v2.go:898-926), runs the command with
  its output also written to executor-logs' local path (launcher_v2.go:467-490, 492-537), reads
  the output file, a missing file being an empty ExecutorOutput (launcher_v2.go:851-880), merges
  each output's URI and metadata from it, refuses a URI outside the run's root
  (objectstore/config.go:86-97), uploads each output's local path when it exists, else logs
  `Local filepath %q does not exist` and records the artifact anyway (launcher_v2.go:540-594,
  object_store.go:88-121). Tasks share nothing but the object store: each has a scratch directory
  of its own (its container's filesystem) and the environment its pod would have, nothing of this
  process's: the spec's container env, KFP_POD_NAME/UID and the ML Metadata service address
  (argocompiler/container.go, common.go), the variables the Kubernetes platform spec takes from
  the namespace's secrets (`secretAsEnv`, driver.go:893-906; a missing secret or key and the pod
  never starts), and what the test gives as the platform's own (e.g. TF_CPP_MIN_LOG_LEVEL).
- Caching: a task whose cachingOptions enable it is keyed by its inputs' artifact names,
  parameter values, output specs without URIs, image, command and arguments
  (cacheutils/cache.go GenerateCacheKey, driver.go:1306-1321, 2528-2541); a key a completed
  execution of the same pipeline name left reuses that execution's artifacts, same ids and URIs,
  without running anything (driver.go:355-377, 1258-1304); the launcher records the key after
  success (launcher_v2.go:236-252). Go's JSON escaping is not reproduced byte for byte: only the
  key's inputs are.

VERTEX, Vertex AI Pipelines as TFX compiles for it: inputs keep the type their producer declares,
the output file is a remote URI beside the outputs (ROOT/<project>/<run>/<task>_<uuid>/), the
task writes its outputs itself, nothing is downloaded or uploaded, no executor-logs, no cache.

Not reproduced: parallel tasks, retries, resource limits, the Kubernetes platform spec beyond
`secretAsEnv`, the kfp-launcher ConfigMap's store settings (the launcher's own S3 client is given),
the run's bookkeeping in the API server and UI, Go's exact JSON and stack traces in messages, TLS.

How a task's command runs is pluggable (`TaskLauncher`): `SubprocessTaskLauncher` runs it as a
subprocess of this machine's Python with the project's unpacked wheel on PYTHONPATH (what the
image installs). A launcher that runs it inside the built image gets the same `TaskCommand`; every
path in it (the output file, HOME, TMPDIR, the downloaded inputs) lies under
`TaskCommand.scratch_dir`, which it must mount at the same path.
"""

import dataclasses
import enum
import hashlib
import json
import os
import posixpath
import re
import subprocess
import sys
import time
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Tuple
import uuid

import yaml

PLACEHOLDER = "{{$}}"
SCHEMA_VERSION = "2.1.0"
DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"  # v2/config/env.go:37
EXECUTOR_LOGS = "executor-logs"  # v2/driver/driver.go:2031
SYSTEM_ARTIFACT = {"schemaTitle": "system.Artifact"}
OUTPUT_METADATA_FILE = "tmp/kfp_outputs/output_metadata.json"  # Under the container's root.
# objectstore/config.go:103 bucketPattern, and the schemes ParseBucketPathToConfig accepts.
BUCKET_PATTERN = re.compile(r"(^[a-z][a-z0-9]+:///?)([^/?]+)(/[^?]*)?(\?.+)?$")
ROOT_SCHEMES = ("gs://", "s3://", "minio://", "mem://")
S3_SESSION_INFO = json.dumps({"Provider": "s3", "Params": {"fromEnv": "true"}},
                             separators=(",", ":"))
VERTEX_PROJECT_NUMBER = "123456789012"


def read_pipeline_spec(spec_file: str) -> Dict[str, Any]:
  """The PipelineSpec of a file `mnist-tfx kubeflow compile` wrote (.yaml, or .json PipelineJob)."""
  with open(spec_file) as f:
    if spec_file.endswith(".json"):
      return json.load(f)["pipelineSpec"]
    return next(yaml.safe_load_all(f))


def read_platform_spec(spec_file: str) -> Optional[Dict[str, Any]]:
  """The platform spec following the PipelineSpec in a .yaml file, or None."""
  with open(spec_file) as f:
    documents = [doc for doc in yaml.safe_load_all(f) if doc]
  return documents[1] if len(documents) > 1 else None


class Backend(enum.Enum):
  OPEN_SOURCE = "open-source Kubeflow Pipelines 2.5"
  VERTEX = "Vertex AI Pipelines"


class RunCreationRefused(Exception):
  """The API server refused to create the run: HTTP `status` and the JSON `body` it answers."""

  def __init__(self, status: int, message: str, code: int, details_code: int):
    super().__init__(message)
    # grpc-gateway v1.16's DefaultHTTPError body (the shape of KFP <= 2.5).
    self.status = status
    self.body = {"error": message, "code": code, "message": message,
                 "details": [{"@type": "type.googleapis.com/google.rpc.Status",
                              "code": details_code, "message": message}]}


class RunFailed(RuntimeError):
  """The run failed: the root DAG driver, a task's launcher or a task's command."""


@dataclasses.dataclass
class Artifact:
  """An artifact as the backend's ML Metadata keeps it."""
  id: int
  uri: str
  artifact_type: Dict[str, Any]  # The producer's declared ArtifactTypeSchema (JSON).
  metadata: Dict[str, Any]  # As recorded (custom properties, converted back to JSON).
  run_id: str
  task: str
  key: str


@dataclasses.dataclass
class TaskRun:
  """What one task received and produced in one run."""
  name: str
  inputs: Dict[str, List[Artifact]]
  outputs: Dict[str, List[Artifact]]
  executor_input: Optional[Dict[str, Any]] = None
  scratch_dir: Optional[str] = None
  seconds: float = 0.0
  cached: bool = False
  warnings: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class TaskCommand:
  """What a task's container runs: its command, environment and filesystem."""
  argv: List[str]
  env: Dict[str, str]
  scratch_dir: str  # The container's filesystem: every path in argv and env lies under it.
  image: str


# Runs a task's command; its stdout and stderr go to the stream; returns the exit code.
TaskLauncher = Callable[[TaskCommand, BinaryIO], int]


class SubprocessTaskLauncher:
  """Runs the command as a subprocess of this machine's Python (`python` in the command is this
  interpreter, as it is the image's in a pod), the unpacked wheel on PYTHONPATH, in the scratch
  directory, with the task's environment and nothing of this process's."""

  def __init__(self, python_path: str):
    self.python_path = python_path

  def __call__(self, command: TaskCommand, log: BinaryIO) -> int:
    env = dict(command.env, PYTHONPATH=self.python_path,
               PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]))
    return subprocess.run(command.argv, cwd=command.scratch_dir, env=env, stdout=log,
                          stderr=subprocess.STDOUT, check=False).returncode


def check_run_creation(spec: Mapping[str, Any]) -> None:
  """What the API server checks when a run is created, in its order.

  Raises:
    RunCreationRefused: a schema version other than 2.1.0 or no pipeline name (400 in the
      template, re-wrapped as 500 by CreateRun), or an executor neither container nor importer
      (500), with the backend's message minus its stack traces.
  """
  if spec.get("schemaVersion") != SCHEMA_VERSION or not spec.get("pipelineInfo", {}).get("name"):
    raise RunCreationRefused(500, "Internal error: Failed to create a run due to error fetching "
                             "manifest", 13, 2)
  problem = _first_unsupported_executor(spec, "root", spec["root"])
  if problem:
    message = (f"Internal error: {problem}\nFailed to compile job\nFailed to generate the "
               "ExecutionSpec\nFailed to create a new run")
    raise RunCreationRefused(500, message, 13, 2)


def _first_unsupported_executor(spec: Mapping[str, Any], name: str,
                                component: Mapping[str, Any]) -> Optional[str]:
  """The compiler's DFS (v2/compiler/visitor.go:95-160): sub-components in sorted task-key
  order, then the DAG; the first executor neither container nor importer is the error."""
  label = component.get("executorLabel")
  if label:
    executor = spec["deploymentSpec"]["executors"][label]
    if "container" in executor or "importer" in executor:
      return None
    return (f'error processing component name="{name}": executor(label="{label}"): '
            "non-container and non-importer executor not implemented")
  tasks = component.get("dag", {}).get("tasks", {})
  for key in sorted(tasks):
    ref = tasks[key]["componentRef"]["name"]
    problem = _first_unsupported_executor(spec, ref, spec["components"][ref])
    if problem:
      return problem
  return None


def check_pipeline_root(root: str, pipeline_name: str, run_id: str) -> None:
  """The root DAG driver's parse of the run's root (objectstore/config.go:115-126).

  Raises:
    RunFailed: with the driver's message.
  """
  match = BUCKET_PATTERN.match(root)
  problem = None
  if match is None:
    problem = f"unrecognized pipeline root format: {json.dumps(root)}"
  elif match.group(1) not in ROOT_SCHEMES:
    problem = f"unsupported Cloud bucket: {json.dumps(root)}"
  if problem:
    raise RunFailed(f"driver.RootDAG(pipelineName={pipeline_name}, runID={run_id}, "
                    f"runtimeConfig) failed: parse bucket config failed: {problem}")


def split_s3_uri(uri: str) -> Tuple[str, str]:
  """(bucket, key) of s3://BUCKET/KEY."""
  if not uri.startswith("s3://"):
    raise ValueError(f"only s3:// URIs are executed by this stand-in, got {uri!r}")
  bucket, _, key = uri[len("s3://"):].partition("/")
  return bucket, key


def mlmd_roundtrip(value: Any) -> Any:
  """A metadata value as ML Metadata stores it and the driver reads it back (converter.go:
  133-170, 186-206): numbers as doubles, booleans as 0/1, lists and structs wrapped.

  Raises:
    RunFailed: a null, which the launcher cannot record ("unknown/unsupported value type").
  """
  if isinstance(value, bool):
    return int(value)
  if isinstance(value, (int, float)):
    return int(value) if float(value).is_integer() else float(value)
  if isinstance(value, str):
    return value
  if isinstance(value, list):
    return {"list": value}
  if isinstance(value, dict):
    return {"struct": value}
  raise RunFailed(f"unknown/unsupported value type {type(value).__name__}")


def cache_fingerprint(executor_input: Mapping[str, Any], container: Mapping[str, Any]) -> str:
  """The driver's cache key (cacheutils/cache.go GenerateCacheKey, GenerateFingerPrint): input
  artifact names, parameter values, output artifacts without their URI, image and command + args
  as written in the spec; sha256 of its JSON with sorted keys."""
  inputs = executor_input.get("inputs", {})
  outputs = executor_input.get("outputs", {}).get("artifacts", {})
  key = {
      "inputArtifactNames": {k: {"artifactNames": [a["name"] for a in v["artifacts"]]}
                             for k, v in inputs.get("artifacts", {}).items()},
      "inputParameterValues": inputs.get("parameterValues", {}),
      "outputArtifactsSpec": {k: {f: v["artifacts"][0][f] for f in ("name", "type", "metadata")
                                  if f in v["artifacts"][0]} for k, v in outputs.items()},
      "outputParametersSpec": {},
      "containerSpec": {"image": container.get("image", ""),
                        "cmdArgs": list(container.get("command", [])) + list(
                            container.get("args", []))},
  }
  text = json.dumps(key, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode()).hexdigest()


def dependency_order(tasks: Mapping[str, Any]) -> List[str]:
  """Task names, each after the tasks it depends on (ties in name order)."""
  def upstream(task: Mapping[str, Any]) -> set:
    found = set(task.get("dependentTasks", []))
    for spec in task.get("inputs", {}).get("artifacts", {}).values():
      if "taskOutputArtifact" in spec:
        found.add(spec["taskOutputArtifact"]["producerTask"])
    return found

  order, done = [], set()
  while len(order) < len(tasks):
    ready = sorted(name for name, task in tasks.items()
                   if name not in done and upstream(task) <= done)
    if not ready:
      raise ValueError(f"Cycle among tasks {sorted(set(tasks) - done)}")
    order.extend(ready)
    done.update(ready)
  return order


def task_parameters(task: Mapping[str, Any]) -> Dict[str, Any]:
  """The task's parameters: constants only (what TFX compiles)."""
  values = {}
  for key, spec in task.get("inputs", {}).get("parameters", {}).items():
    if "runtimeValue" not in spec:
      raise ValueError(f"Parameter {key!r}: only constants are supported by this stand-in.")
    values[key] = spec["runtimeValue"]["constant"]
  return values


def with_defaults(values: Mapping[str, Any], component: Mapping[str, Any]) -> Dict[str, Any]:
  """The launcher's addDefaultParams (launcher_v2.go:928-950): component defaults for the
  parameters the task does not set."""
  result = dict(values)
  for key, spec in component.get("inputDefinitions", {}).get("parameters", {}).items():
    if key not in result and "defaultValue" in spec:
      result[key] = spec["defaultValue"]
  return result


class StoreSide:
  """The launcher's side of the object store (an S3 client, e.g. boto3's): what it downloads
  before a task's command and uploads after it."""

  def __init__(self, client):
    self.client = client

  def download(self, name: str, uri: str, local_dir: str) -> None:
    """DownloadBlob (object_store.go:123-150, 180-213): every object whose key starts with the
    URI's key, at its path relative to that key; a key ending in "/" becomes a file.

    Raises:
      RunFailed: as the launcher words it (launcher_v2.go:659-661).
    """
    bucket, blob_dir = split_s3_uri(uri)
    pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=blob_dir)
    for item in (item for page in pages for item in page.get("Contents", [])):
      relative = posixpath.relpath(item["Key"], blob_dir)  # filepath.Rel: "a/" gives "a".
      local = posixpath.normpath(posixpath.join(local_dir, relative))
      try:
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
          self.client.download_fileobj(bucket, item["Key"], f)
      except OSError as e:
        raise RunFailed(f"failed to execute component: failed to download input artifact "
                        f"{json.dumps(name)} from remote storage URI {json.dumps(uri)}: "
                        f"downloadFile(): unable to complete copying {json.dumps(item['Key'])} "
                        f"to local storage {json.dumps(local)}: {e.strerror}") from None

  def upload(self, local_path: str, uri: str) -> bool:
    """UploadBlob (object_store.go:88-121): a file, or a directory's files recursively; False,
    uploading nothing, when the local path does not exist."""
    if not os.path.exists(local_path):
      return False
    bucket, key = split_s3_uri(uri)
    if os.path.isfile(local_path):
      self.client.upload_file(local_path, bucket, key)
      return True
    for entry in sorted(os.listdir(local_path)):
      self.upload(os.path.join(local_path, entry), f"{uri}/{entry}")
    return True

  def read(self, uri: str) -> Optional[bytes]:
    """The object's bytes, None when there is none."""
    bucket, key = split_s3_uri(uri)
    try:
      return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except self.client.exceptions.NoSuchKey:
      return None


def parse_executor_output(text: str, source: str) -> Dict[str, Any]:
  """The ExecutorOutput as protojson.Unmarshal reads it (unknown fields refused;
  launcher_v2.go:851-880), as a JSON dict."""
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  try:
    message = json_format.Parse(text, pipeline_spec_pb2.ExecutorOutput())
  except json_format.ParseError as e:
    raise RunFailed(f"failed to unmarshall ExecutorOutput in file {json.dumps(source)}: "
                    f"{e}") from None
  return json_format.MessageToDict(message)


@dataclasses.dataclass
class _Run:
  """One run: its id, root and where its tasks' containers live."""
  run_id: str
  root: str  # The run's root: ROOT/<pipeline>/<run id> (open source) or ROOT/<project>/<run id>.
  work_dir: str
  tasks: Dict[str, TaskRun] = dataclasses.field(default_factory=dict)


class PipelineSpecRunner:
  """Creates and executes runs of one compiled PipelineSpec against one ML Metadata and cache
  stand-in (in memory) and one object store (the `store_client`, an S3 client)."""

  def __init__(self, spec: Dict[str, Any], backend: Backend, store_client: Any, work_dir: str,
               task_launcher: TaskLauncher, platform_env: Optional[Mapping[str, str]] = None,
               platform_spec: Optional[Dict[str, Any]] = None,
               secrets: Optional[Mapping[str, Mapping[str, str]]] = None):
    """
    Args:
      spec: the PipelineSpec (what `pipeline.yaml` holds); may be replaced between runs.
      backend: which backend's behaviour to reproduce.
      store_client: the launcher's S3 client of the object store.
      work_dir: where each task's container filesystem (its scratch directory) is made.
      task_launcher: runs a task's command (see `TaskLauncher`).
      platform_env: environment every task's pod gets from the platform besides KFP's own and
        the spec's (e.g. TF_CPP_MIN_LOG_LEVEL; on Vertex AI, what its service account provides).
      platform_spec: the spec's Kubernetes platform spec (open source: its `secretAsEnv` is
        applied, driver.go extendPodSpecPatch :893).
      secrets: the Kubernetes secrets of the run's namespace, {name: {key: value}}.
    """
    self.spec = spec
    self.platform_spec = platform_spec or {}
    self.secrets = dict(secrets or {})
    self.backend = backend
    self.store = StoreSide(store_client)
    self.work_dir = work_dir
    self.task_launcher = task_launcher
    self.platform_env = dict(platform_env or {})
    self.artifacts: List[Artifact] = []  # ML Metadata: every recorded artifact, by id - 1.
    self.cache: Dict[Tuple[str, str], Dict[str, List[Artifact]]] = {}

  @property
  def pipeline_name(self) -> str:
    return self.spec["pipelineInfo"]["name"]

  def run(self, pipeline_root: Optional[str] = None) -> Dict[str, TaskRun]:
    """Creates a run (its runtime config's pipeline root: `pipeline_root`) and executes every
    task in dependency order; returns the task runs by name.

    Raises:
      RunCreationRefused: the API server refused the run (nothing ran).
      RunFailed: the root driver, a launcher or a command failed.
    """
    run_id = str(uuid.uuid4())
    if self.backend is Backend.OPEN_SOURCE:
      check_run_creation(self.spec)
      root = pipeline_root or DEFAULT_PIPELINE_ROOT  # The spec's defaultPipelineRoot is unread.
      check_pipeline_root(root, self.pipeline_name, run_id)
      run_root = f"{root.rstrip('/')}/{self.pipeline_name}/{run_id}"  # metadata/client.go:287
    else:
      root = pipeline_root or self.spec["defaultPipelineRoot"]
      run_root = f"{root.rstrip('/')}/{VERTEX_PROJECT_NUMBER}/{run_id}"
    run = _Run(run_id, run_root, os.path.join(self.work_dir, run_id))
    tasks = self.spec["root"]["dag"]["tasks"]
    for name in dependency_order(tasks):
      started = time.monotonic()
      run.tasks[name] = self._task(run, name, tasks[name])
      run.tasks[name].seconds = time.monotonic() - started
    return run.tasks

  def _task(self, run: _Run, name: str, task: Mapping[str, Any]) -> TaskRun:
    component = self.spec["components"][task["componentRef"]["name"]]
    executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
    inputs = {}
    for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
      producer = spec["taskOutputArtifact"]
      inputs[key] = run.tasks[producer["producerTask"]].outputs.get(
          producer["outputArtifactKey"], [])
    if "importer" in executor:
      return self._import(run, name, executor["importer"], component)
    if "container" not in executor:  # Only Vertex AI gets here (resolvers); not reproduced.
      raise ValueError(f"{name}: executor {sorted(executor)} not reproduced by this stand-in")
    return self._container(run, name, task, component, executor["container"], inputs)

  def _record(self, run: _Run, task: str, key: str, uri: str, artifact_type: Dict[str, Any],
              metadata: Mapping[str, Any]) -> Artifact:
    """RecordArtifact (metadata/client.go:1030-1060): an id, the metadata as MLMD stores it,
    display_name and store_session_info added when absent."""
    stored = {k: mlmd_roundtrip(v) for k, v in metadata.items()}
    if self.backend is Backend.OPEN_SOURCE:
      stored.setdefault("display_name", key)
      stored.setdefault("store_session_info", S3_SESSION_INFO)
    artifact = Artifact(len(self.artifacts) + 1, uri, artifact_type, stored, run.run_id, task, key)
    self.artifacts.append(artifact)
    return artifact

  def _import(self, run: _Run, name: str, importer: Mapping[str, Any],
              component: Mapping[str, Any]) -> TaskRun:
    """An importer task (component/importer_launcher.go): registers `artifactUri.constant` (or
    reuses the same type, URI and metadata from an earlier run of this pipeline unless
    `reimport`), without any I/O."""
    uri = importer["artifactUri"]["constant"]
    metadata = importer.get("metadata", {})
    (key,) = component["outputDefinitions"]["artifacts"]
    found = [a for a in self.artifacts if (a.uri, a.artifact_type) == (uri, importer["typeSchema"])
             and all(a.metadata.get(k) == mlmd_roundtrip(v) for k, v in metadata.items())]
    if found and not importer.get("reimport"):
      return TaskRun(name, {}, {key: [found[-1]]})
    artifact = self._record(run, name, key, uri, importer["typeSchema"], metadata)
    return TaskRun(name, {}, {key: [artifact]})

  def _runtime_input(self, artifact: Artifact) -> Dict[str, Any]:
    if self.backend is Backend.OPEN_SOURCE:
      return {"name": str(artifact.id), "type": {"instanceSchema": ""}, "uri": artifact.uri,
              "metadata": artifact.metadata}
    return {"name": (f"projects/{VERTEX_PROJECT_NUMBER}/locations/us-central1/metadataStores/"
                     f"default/artifacts/{artifact.id}"),
            "type": artifact.artifact_type, "uri": artifact.uri, "metadata": artifact.metadata}

  def _executor_input(self, run: _Run, name: str, task: Mapping[str, Any],
                      component: Mapping[str, Any], inputs: Mapping[str, List[Artifact]],
                      scratch: str) -> Dict[str, Any]:
    """What the driver provisions (driver.go:2010-2052), or Vertex AI's equivalent."""
    declared = {key: spec["artifactType"] for key, spec in
                component.get("outputDefinitions", {}).get("artifacts", {}).items()}
    if self.backend is Backend.OPEN_SOURCE:
      task_root = f"{run.root}/{name}/{uuid.uuid4()}"
      declared[EXECUTOR_LOGS] = SYSTEM_ARTIFACT
      output_file = os.path.join(scratch, OUTPUT_METADATA_FILE)
    else:
      task_root = f"{run.root}/{name}_{uuid.uuid4().hex[:19]}"
      output_file = f"{task_root}/executor_output.json"
    return {
        "inputs": {"parameterValues": task_parameters(task),
                   "artifacts": {key: {"artifacts": [self._runtime_input(a) for a in artifacts]}
                                 for key, artifacts in inputs.items() if artifacts}},
        "outputs": {"artifacts": {key: {"artifacts": [{"type": artifact_type,
                                                       "uri": f"{task_root}/{key}"}]}
                                  for key, artifact_type in declared.items()},
                    "outputFile": output_file},
    }

  def _container(self, run: _Run, name: str, task: Mapping[str, Any],
                 component: Mapping[str, Any], container: Mapping[str, Any],
                 inputs: Dict[str, List[Artifact]]) -> TaskRun:
    """A container task: the cache lookup, then its launcher in a container of its own."""
    scratch = os.path.join(run.work_dir, name)
    executor_input = self._executor_input(run, name, task, component, inputs, scratch)
    fingerprint = None
    if (self.backend is Backend.OPEN_SOURCE and
        task.get("cachingOptions", {}).get("enableCache")):
      fingerprint = cache_fingerprint(executor_input, container)
      cached = self.cache.get((fingerprint, self.pipeline_name))
      if cached is not None:
        return TaskRun(name, inputs, cached, executor_input, cached=True)
    task_run = TaskRun(name, inputs, {}, executor_input, scratch)
    os.makedirs(scratch)  # The task's pod: a cached task never gets one (driver.go:355-377).
    if self.backend is Backend.OPEN_SOURCE:
      self._download_inputs(executor_input, scratch)
    self._launch(run, name, component, container, executor_input, scratch)
    task_run.outputs = self._outputs(run, name, executor_input, scratch, task_run.warnings)
    if fingerprint:
      self.cache[(fingerprint, self.pipeline_name)] = task_run.outputs
    return task_run

  @staticmethod
  def local_path(scratch: str, uri: str) -> str:
    """LocalPathForURI (launcher_v2.go:882-896), in the task's container filesystem."""
    split_s3_uri(uri)
    return os.path.join(scratch, "s3", uri[len("s3://"):])

  def _download_inputs(self, executor_input: Mapping[str, Any], scratch: str) -> None:
    """downloadArtifacts and prepareOutputFolders (launcher_v2.go:619-688, 898-926)."""
    for key, artifact_list in executor_input["inputs"]["artifacts"].items():
      uri = artifact_list["artifacts"][0]["uri"]
      self.store.download(key, uri, self.local_path(scratch, uri))
    for artifact_list in executor_input["outputs"]["artifacts"].values():
      local = self.local_path(scratch, artifact_list["artifacts"][0]["uri"])
      os.makedirs(os.path.dirname(local), exist_ok=True)

  def _secret_env(self, label: str) -> Dict[str, str]:
    """The variables the platform spec takes from secrets for executor `label`.

    Raises:
      RunFailed: a secret or key the namespace lacks (the pod never starts; kubelet's words).
    """
    executors = self.platform_spec.get("platforms", {}).get("kubernetes", {}).get(
        "deploymentSpec", {}).get("executors", {})
    env = {}
    for secret in executors.get(label, {}).get("secretAsEnv", []):
      values = self.secrets.get(secret["secretName"])
      if values is None:
        raise RunFailed(f"{label}: CreateContainerConfigError: secret "
                        f"{json.dumps(secret['secretName'])} not found")
      for item in secret["keyToEnv"]:
        if item["secretKey"] not in values:
          raise RunFailed(f"{label}: CreateContainerConfigError: couldn't find key "
                          f"{item['secretKey']} in Secret kubeflow/{secret['secretName']}")
        env[item["envVar"]] = values[item["secretKey"]]
    return env

  def _pod_env(self, run: _Run, label: str, container: Mapping[str, Any],
               scratch: str) -> Dict[str, str]:
    """The pod's environment: its own HOME and /tmp, KFP's variables (argocompiler/container.go,
    common.go), the spec's container env and secrets (open source), the platform's."""
    env = {"HOME": os.path.join(scratch, "root"), "TMPDIR": os.path.join(scratch, "tmp")}
    if self.backend is Backend.OPEN_SOURCE:
      env.update({"KFP_POD_NAME": f"{self.pipeline_name}-{run.run_id[:5]}-{len(run.tasks)}",
                  "KFP_POD_UID": str(uuid.uuid4()),
                  "METADATA_GRPC_SERVICE_HOST": "metadata-grpc-service.kubeflow",
                  "METADATA_GRPC_SERVICE_PORT": "8080"})
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    if self.backend is Backend.OPEN_SOURCE:
      env.update(self._secret_env(label))
    env.update(self.platform_env)
    for directory in (env["HOME"], env["TMPDIR"]):
      os.makedirs(directory, exist_ok=True)
    return env

  def _launch(self, run: _Run, name: str, component: Mapping[str, Any],
              container: Mapping[str, Any], executor_input: Mapping[str, Any],
              scratch: str) -> None:
    """Runs the command, `{{$}}` replaced by the ExecutorInput with the component's parameter
    defaults (launcher_v2.go:341-390), its console also into executor-logs' local path."""
    with_parameters = json.loads(json.dumps(executor_input))
    with_parameters["inputs"]["parameterValues"] = with_defaults(
        executor_input["inputs"]["parameterValues"], component)
    serialized = json.dumps(with_parameters)
    argv = [arg.replace(PLACEHOLDER, serialized)
            for arg in list(container.get("command", [])) + list(container.get("args", []))]
    if any("{{$" in arg.replace(serialized, "") for arg in argv):
      raise ValueError(f"{name}: a placeholder this stand-in does not fill: {argv}")
    logs = executor_input["outputs"]["artifacts"].get(EXECUTOR_LOGS)
    log_path = (self.local_path(scratch, logs["artifacts"][0]["uri"]) if logs else
                os.path.join(scratch, "pod.log"))
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    command = TaskCommand(argv, self._pod_env(run, component["executorLabel"], container, scratch),
                          scratch, container.get("image", ""))
    with open(log_path, "wb") as log:
      returncode = self.task_launcher(command, log)
    if returncode != 0:
      with open(log_path, errors="replace") as f:
        tail = f.read()[-6000:]
      raise RunFailed(f"{name} (run {run.run_id}): failed to execute component: exit status "
                      f"{returncode}; log {log_path}:\n{tail}")

  def _executor_output(self, executor_input: Mapping[str, Any]) -> Dict[str, Any]:
    """The task's ExecutorOutput; none written is an empty one (launcher_v2.go:851-867)."""
    path = executor_input["outputs"]["outputFile"]
    if self.backend is Backend.OPEN_SOURCE:
      if not os.path.exists(path):
        return {}
      with open(path) as f:
        return parse_executor_output(f.read(), path)
    content = self.store.read(path)
    return {} if content is None else parse_executor_output(content.decode(), path)

  def _outputs(self, run: _Run, name: str, executor_input: Mapping[str, Any], scratch: str,
               warnings: List[str]) -> Dict[str, List[Artifact]]:
    """uploadOutputArtifacts (launcher_v2.go:540-594): merge, check, upload, record."""
    produced = self._executor_output(executor_input).get("artifacts", {})
    outputs = {}
    for key, artifact_list in executor_input["outputs"]["artifacts"].items():
      provisioned = artifact_list["artifacts"][0]
      uri, metadata = provisioned["uri"], dict(provisioned.get("metadata", {}))
      for merged in produced.get(key, {}).get("artifacts", [])[:1]:
        uri = merged.get("uri") or uri
        metadata.update(merged.get("metadata", {}))
      if self.backend is Backend.OPEN_SOURCE:
        if not uri.startswith(run.root) or not uri[len(run.root):].strip("/"):
          raise RunFailed(f"failed to upload output artifact {json.dumps(key)}: URI "
                          f"{json.dumps(uri)} does not have expected bucket prefix "
                          f"{json.dumps(run.root)}")
        local = self.local_path(scratch, uri)
        if not self.store.upload(local, uri):
          warnings.append(f"Local filepath {json.dumps(local)} does not exist")
      outputs[key] = [self._record(run, name, key, uri, provisioned["type"], metadata)]
    return outputs
