"""A test-side stand-in for the Kubeflow Pipelines v2 backend: runs a compiled pipeline spec.

Not a product feature and not a cluster: it reads the PipelineSpec `mnist-tfx kubeflow compile`
wrote and executes it the way the KFP v2 driver and launcher would, so that a test can show the spec
itself runs, end to end, in containers' terms:

- walks `root.dag.tasks` in dependency order (`dependentTasks` and the producers of input
  artifacts);
- runs each container task's own `command` + `args` from `deploymentSpec`, the `{{$}}` placeholder
  replaced by the ExecutorInput JSON (`inputs.parameterValues` from the task's constants, input
  artifacts with name, URI and metadata, `outputs.artifacts` URIs laid out under the pipeline root,
  `outputs.outputFile`), with a working directory outside the checkout: as a subprocess whose
  PYTHONPATH is the unpacked wheel the image installs, or (a `TaskRunner`) in the image itself;
  then reads the ExecutorOutput back and hands each output artifact's URI and metadata to the
  downstream tasks;
- resolves Resolver tasks by applying the spec's own `outputArtifactQueries` filters
  (`schema_title`, `state`, `metadata.KEY.number_value`, `name` with `{{$.inputs...}}`
  placeholders) to the artifacts of this and earlier runs (an in-memory stand-in for ML Metadata,
  newest match first), and Importer tasks by registering their `artifactUri`.

Two launchers are imitated (`Launcher`):
- OPEN_SOURCE, as the open-source KFP v2 launcher passes inputs (tensorflow/tfx#7768): artifacts
  handed over from an upstream task arrive with an empty `instanceSchema`, artifacts a Resolver
  found in ML Metadata with a `system.*` schema title (`system.Dataset`, `system.Model`,
  `system.Artifact`); the output file is a local `/tmp/kfp_outputs/output_metadata.json`-like path;
  output URIs are PIPELINE_ROOT/PIPELINE_NAME/RUN_ID/TASK/KEY.
- VERTEX, as compiled: every artifact keeps the type its producer declares; the output file is
  PIPELINE_ROOT/RUN_ID/TASK/executor_output.json.

Not reproduced: caching (every task runs), retries, parallel tasks, resource limits, the
FileBasedExampleGen pre-cache-check driver hook (unused by this pipeline), artifact download and
upload between pods (tasks share the local filesystem; the directory-marker clean-up is tested on
its own), the KFP UI's visualisations and the server's run bookkeeping.
"""

import dataclasses
import enum
import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import yaml

# The TFX type title of each schema title the open-source backend normalises to (KFP's own
# `system.*` types: Dataset for Examples, Model for Model and PushedModel, Artifact for the rest).
SYSTEM_TITLES = {"tfx.Examples": "system.Dataset", "tfx.Model": "system.Model",
                 "tfx.PushedModel": "system.Model"}
DEFAULT_SYSTEM_TITLE = "system.Artifact"
PLACEHOLDER = "{{$}}"
# How a task's command runs, as a pod would run it: (command, working directory, log file) -> exit
# code. The default runs it on this machine (see PipelineSpecRunner); tests/images.py's
# `task_runner` runs it in a working container of the Kubeflow image.
TaskRunner = Callable[[List[str], str, str], int]


def read_pipeline_spec(spec_file: str) -> Dict[str, Any]:
  """The PipelineSpec of a file `mnist-tfx kubeflow compile` wrote (.yaml, or .json PipelineJob)."""
  with open(spec_file) as f:
    if spec_file.endswith(".json"):
      return json.load(f)["pipelineSpec"]
    return yaml.safe_load(f)


class Launcher(enum.Enum):
  OPEN_SOURCE = "open-source KFP v2"
  VERTEX = "Vertex AI"


class TaskFailed(RuntimeError):
  """A task's subprocess exited non-zero or wrote no ExecutorOutput."""


@dataclasses.dataclass
class Artifact:
  """An artifact as the backend's ML Metadata keeps it."""
  name: str  # The runtime name the ExecutorInput carries.
  uri: str
  artifact_type: Dict[str, Any]  # The producer's declared ArtifactTypeSchema (JSON).
  metadata: Dict[str, Any]
  run_id: str
  task: str
  state: str = "LIVE"

  @property
  def schema_title(self) -> str:
    if "schemaTitle" in self.artifact_type:
      return self.artifact_type["schemaTitle"]
    return (yaml.safe_load(self.artifact_type.get("instanceSchema", "")) or {}).get("title", "")


@dataclasses.dataclass
class TaskRun:
  """What one task received and produced in one run."""
  name: str
  inputs: Dict[str, List[Artifact]]
  outputs: Dict[str, List[Artifact]]
  executor_input: Optional[Dict[str, Any]] = None
  seconds: float = 0.0


class MetadataStandIn:
  """The artifacts every run registered, oldest first (what the resolvers query)."""

  def __init__(self):
    self.artifacts: List[Artifact] = []

  def query(self, conditions: List[str], bindings: Mapping[str, str]) -> List[Artifact]:
    """The newest LIVE artifact matching every condition of a resolver filter, if any."""
    matches = [a for a in self.artifacts if all(_matches(a, c, bindings) for c in conditions)]
    return matches[-1:]


def _matches(artifact: Artifact, condition: str, bindings: Mapping[str, str]) -> bool:
  key, _, value = condition.partition("=")
  key, value = key.strip(), value.strip()
  for placeholder, bound in bindings.items():
    value = value.replace(placeholder, bound)
  if value.startswith('"') and value.endswith('"'):
    value = value[1:-1]
  if key == "schema_title":
    return artifact.schema_title == value
  if key == "state":
    return artifact.state == value
  if key == "name":
    return artifact.name == value
  metadata = re.fullmatch(r"metadata\.(\w+)\.(number_value|string_value)", key)
  if metadata:
    actual = artifact.metadata.get(metadata.group(1))
    if metadata.group(2) == "number_value":
      return isinstance(actual, (int, float)) and float(actual) == float(value)
    return actual == value
  raise ValueError(f"Resolver filter condition not understood by this stand-in: {condition!r}")


def _dependency_order(tasks: Mapping[str, Any]) -> List[str]:
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


def _parameter_values(task: Mapping[str, Any]) -> Dict[str, Any]:
  values = {}
  for key, spec in task.get("inputs", {}).get("parameters", {}).items():
    if "runtimeValue" not in spec:
      raise ValueError(f"Parameter {key!r}: only constants are supported by this stand-in.")
    values[key] = spec["runtimeValue"]["constant"]
  return values


class PipelineSpecRunner:
  """Runs one compiled PipelineSpec, run after run, against one ML Metadata stand-in."""

  def __init__(self, spec: Dict[str, Any], pipeline_root: str, work_dir: str,
               python_path: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
               run_task: Optional[TaskRunner] = None):
    """
    Args:
      spec: the PipelineSpec (what `pipeline.yaml` holds).
      pipeline_root: where output artifacts are laid out.
      work_dir: the tasks' working directories and local output files (outside the checkout).
      python_path: PYTHONPATH of every task run on this machine (the unpacked wheel); None keeps
        the environment's.
      env: extra environment variables of every task run on this machine.
      run_task: runs each task's command; default: a subprocess of this machine with this
        interpreter's `python` and the environment above.
    """
    self.spec = spec
    self._run_task = run_task or self._run_on_host
    self.pipeline_root = pipeline_root
    self.work_dir = work_dir
    self.metadata = MetadataStandIn()
    self._env = dict(os.environ)
    # `python` in the tasks' command is this interpreter, as it is the image's in a pod.
    self._env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + self._env.get("PATH", "")
    self._env.pop("PYTHONPATH", None)
    if python_path:
      self._env["PYTHONPATH"] = python_path
    self._env.update(env or {})

  def run(self, run_id: str, launcher: Launcher) -> Dict[str, TaskRun]:
    """Runs every task of the spec once; returns them by name. Raises TaskFailed."""
    tasks = self.spec["root"]["dag"]["tasks"]
    done: Dict[str, TaskRun] = {}
    for name in _dependency_order(tasks):
      task = tasks[name]
      component = self.spec["components"][task["componentRef"]["name"]]
      executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
      inputs = {}
      for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
        producer = spec["taskOutputArtifact"]
        inputs[key] = done[producer["producerTask"]].outputs.get(producer["outputArtifactKey"], [])
      started = time.monotonic()
      if "resolver" in executor:
        task_run = self._resolve(name, executor["resolver"], inputs)
      elif "importer" in executor:
        task_run = self._import(name, run_id, executor["importer"], component)
      else:
        task_run = self._execute(name, run_id, launcher, task, component, executor["container"],
                                 inputs)
      task_run.seconds = time.monotonic() - started
      done[name] = task_run
    return done

  def _run_on_host(self, command: List[str], cwd: str, log_path: str) -> int:
    with open(log_path, "wb") as log:
      return subprocess.run(command, cwd=cwd, env=self._env, stdout=log,
                            stderr=subprocess.STDOUT, check=False).returncode

  def _resolve(self, name: str, resolver: Mapping[str, Any],
               inputs: Dict[str, List[Artifact]]) -> TaskRun:
    outputs = {}
    for key, query in resolver["outputArtifactQueries"].items():
      bindings = {}
      for placeholder in re.findall(r"\{\{\$\.inputs\.artifacts\[[^}]*\}\}", query["filter"]):
        found = re.fullmatch(r"\{\{\$\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]\}\}",
                             placeholder)
        if not found:
          raise ValueError(f"Placeholder not understood by this stand-in: {placeholder}")
        source = inputs.get(found.group(1), [])
        value = source[0].metadata.get(found.group(2)) if source else None
        if value is None:
          bindings = None  # Nothing to bind to: the query matches nothing.
          break
        bindings[placeholder] = str(value)
      outputs[key] = ([] if bindings is None else
                      self.metadata.query(query["filter"].split(" AND "), bindings))
    return TaskRun(name, inputs, outputs)

  def _import(self, name: str, run_id: str, importer: Mapping[str, Any],
              component: Mapping[str, Any]) -> TaskRun:
    uri = importer["artifactUri"]["runtimeValue"]["constant"]
    artifact = Artifact(f"{run_id}.{name}.result", uri, importer["typeSchema"],
                        importer.get("metadata", {}), run_id, name)
    self.metadata.artifacts.append(artifact)
    key = next(iter(component.get("outputDefinitions", {}).get("artifacts", {"result": None})))
    return TaskRun(name, {}, {key: [artifact]})

  def _executor(self, task_name: str) -> Mapping[str, Any]:
    task = self.spec["root"]["dag"]["tasks"][task_name]
    label = self.spec["components"][task["componentRef"]["name"]]["executorLabel"]
    return self.spec["deploymentSpec"]["executors"][label]

  def _from_resolver(self, task: Mapping[str, Any], input_key: str) -> bool:
    """Whether an input comes from a Resolver task (found in ML Metadata, not handed over)."""
    producer = task["inputs"]["artifacts"][input_key]["taskOutputArtifact"]["producerTask"]
    return "resolver" in self._executor(producer)

  def _runtime_input(self, artifact: Artifact, launcher: Launcher, from_resolver: bool):
    if launcher is Launcher.VERTEX:
      artifact_type = artifact.artifact_type
    elif from_resolver:
      artifact_type = {"schemaTitle": SYSTEM_TITLES.get(artifact.schema_title,
                                                        DEFAULT_SYSTEM_TITLE)}
    else:
      artifact_type = {"instanceSchema": ""}
    return {"name": artifact.name, "uri": artifact.uri, "metadata": artifact.metadata,
            "type": artifact_type}

  def _execute(self, name: str, run_id: str, launcher: Launcher, task: Mapping[str, Any],
               component: Mapping[str, Any], container: Mapping[str, Any],
               inputs: Dict[str, List[Artifact]]) -> TaskRun:
    pipeline_name = self.spec["pipelineInfo"]["name"]
    task_dir = os.path.join(self.work_dir, run_id, name)
    os.makedirs(task_dir, exist_ok=True)
    if launcher is Launcher.OPEN_SOURCE:
      output_root = os.path.join(self.pipeline_root, pipeline_name, run_id, name)
      output_file = os.path.join(task_dir, "kfp_outputs", "output_metadata.json")
    else:
      output_root = os.path.join(self.pipeline_root, run_id, name)
      output_file = os.path.join(output_root, "executor_output.json")
    declared_outputs = component.get("outputDefinitions", {}).get("artifacts", {})
    outputs = {key: Artifact(f"{run_id}.{name}.{key}", os.path.join(output_root, key),
                             spec["artifactType"], {}, run_id, name)
               for key, spec in declared_outputs.items()}
    executor_input = {
        "inputs": {
            "parameterValues": _parameter_values(task),
            "artifacts": {
                key: {"artifacts": [self._runtime_input(a, launcher, self._from_resolver(task, key))
                                    for a in artifacts]}
                for key, artifacts in inputs.items() if artifacts},
        },
        "outputs": {
            "artifacts": {key: {"artifacts": [{"name": a.name, "uri": a.uri,
                                               "type": a.artifact_type, "metadata": {}}]}
                          for key, a in outputs.items()},
            "outputFile": output_file,
        },
    }
    serialized = json.dumps(executor_input)
    command = list(container.get("command", [])) + [
        serialized if arg == PLACEHOLDER else arg for arg in container.get("args", [])]
    if any("{{$" in arg for arg in command if arg is not serialized):
      raise ValueError(f"{name}: a placeholder this stand-in does not fill: {command}")
    log_path = os.path.join(task_dir, "log.txt")
    returncode = self._run_task(command, task_dir, log_path)
    if returncode != 0 or not os.path.exists(output_file):
      with open(log_path, errors="replace") as f:
        tail = f.read()[-6000:]
      raise TaskFailed(f"{run_id}/{name} exited {returncode}; log {log_path}:\n{tail}")
    with open(output_file) as f:
      executor_output = json.load(f)
    for key, artifact in outputs.items():
      produced = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [{}])[0]
      artifact.uri = produced.get("uri") or artifact.uri
      artifact.metadata = produced.get("metadata", {})
      self.metadata.artifacts.append(artifact)
    return TaskRun(name, inputs, {key: [a] for key, a in outputs.items()}, executor_input)
