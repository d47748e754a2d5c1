"""The compiled spec runs end to end on the open-source KFP backend's terms, twice, and on Vertex's.

`mnist-tfx kubeflow compile` writes pipeline.yaml with s3:// paths; tests/kfp_v2_driver.py (a
stand-in for the backend, not a cluster) creates the runs and executes every task's own command
in a fresh container of the Kubeflow image (kubeflow/Dockerfile built with buildah on a stand-in of
python:3.10-slim, without edgetpu_compiler: tests/images.py), each task in a scratch directory of
its own (its container's filesystem) with nothing in common but the object store stand-in (moto's
S3 server on loopback, reached through the address and credentials in the pod's environment), on a
real MNIST slice.
Open source, run 1: nothing deployed yet. Run 2, another seed: the data steps come from KFP's
cache, the new model is compared with the model run 1 deployed, and pushed as version 2. Vertex
AI: one run of its own, in a bucket of its own.
"""

import json
import os
import re
import tempfile

import pytest

from components.pusher import constants as pusher_constants
from core import evaluation_metrics
from core import int8_tflite
from core import push_manifest
from mnist_tfx import cli
from tests import fixtures_object_store
from tests import images
from tests import kfp_v2_driver

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # Three runs, ~20 task containers.

IMAGE = "registry.example/mnist-edgetpu-tfx@sha256:" + "0123456789abcdef" * 4
TASKS = ("MnistExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
         "AnomaliesGate", "Trainer", "Int8Evaluator", "EdgeTpuPusher")
DATA_TASKS = ("MnistExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
              "AnomaliesGate")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def compile_spec(tmp_path_factory, data_dir: str, root: str, seed: int, *pod_args: str):
  """(PipelineSpec, platform spec or None) of `mnist-tfx kubeflow compile`."""
  spec_file = str(tmp_path_factory.mktemp("spec") / "pipeline.yaml")
  assert cli.main([
      "kubeflow", "compile", "--output", spec_file, "--image", IMAGE, "--pipeline-root", root,
      "--data-dir", data_dir, "--beam-arg=--direct_running_mode=in_memory", *pod_args,
      # One small epoch; bless from 0.5 and whatever the baseline did, so every run pushes.
      "--epochs", "1", "--train-config", "batch_size=16", "--train-config", "max_shift=0",
      "--train-config", f"seed={seed}", "--min-int8-accuracy", "0.5",
      "--max-quantization-drop", "0.5", "--baseline-tolerance", "1.0"]) == 0
  return (kfp_v2_driver.read_pipeline_spec(spec_file),
          kfp_v2_driver.read_platform_spec(spec_file))


@pytest.fixture(scope="module")
def runs(s3_store, s3_mnist_slice, kubeflow_image, tmp_path_factory):
  """({"open source 1", "open source 2", "vertex": {task: TaskRun}}, their roots)."""
  launcher = images.TaskLauncher(kubeflow_image)
  quiet = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
  # The store's endpoint in the spec, its credentials from a secret of the run's namespace.
  endpoint = ["--env", f"AWS_ENDPOINT_URL={s3_store.endpoint}", "--env",
              f"AWS_REGION={fixtures_object_store.REGION}"]
  secret = ["--secret-env", "s3-credentials:accesskey=AWS_ACCESS_KEY_ID",
            "--secret-env", "s3-credentials:secretkey=AWS_SECRET_ACCESS_KEY"]
  secrets = {"s3-credentials": {"accesskey": fixtures_object_store.ACCESS_KEY_ID,
                                "secretkey": fixtures_object_store.SECRET_ACCESS_KEY}}
  oss_root = f"s3://{s3_store.new_bucket('oss')}/root"
  spec, platform = compile_spec(tmp_path_factory, s3_mnist_slice, oss_root, 0, *endpoint, *secret)
  oss = kfp_v2_driver.PipelineSpecRunner(
      spec, kfp_v2_driver.Backend.OPEN_SOURCE, s3_store.client(),
      str(tmp_path_factory.mktemp("pods")), launcher, quiet, platform, secrets)
  done = {"open source 1": oss.run(oss_root)}
  # The same pipeline resubmitted with another seed: a new model, which the evaluator must
  # compare with the one run 1 deployed.
  oss.spec, oss.platform_spec = compile_spec(tmp_path_factory, s3_mnist_slice, oss_root, 1,
                                             *endpoint, *secret)
  done["open source 2"] = oss.run(oss_root)
  # Vertex AI: no Kubernetes secrets; the credentials are the job's environment.
  vertex_root = f"s3://{s3_store.new_bucket('vertex')}/root"
  vertex = kfp_v2_driver.PipelineSpecRunner(
      compile_spec(tmp_path_factory, s3_mnist_slice, vertex_root, 0, *endpoint)[0],
      kfp_v2_driver.Backend.VERTEX, s3_store.client(), str(tmp_path_factory.mktemp("vertex")),
      launcher, {**quiet, **s3_store.env})
  done["vertex"] = vertex.run(vertex_root)
  for name, tasks in done.items():
    print(f"{name}: " + ", ".join(f"{t} {'cached' if r.cached else f'{r.seconds:.0f}s'}"
                                  for t, r in tasks.items()))
  return done, {"open source": oss_root, "vertex": vertex_root}


def only(task_run, key):
  (artifact,) = task_run.outputs[key]
  return artifact


def read_object(s3_store, uri: str) -> bytes:
  bucket, key = kfp_v2_driver.split_s3_uri(uri)
  return s3_store.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def test_every_task_ran_in_its_own_container_and_wrote_only_to_the_bucket(runs, s3_store):
  done, roots = runs
  first = done["open source 1"]
  assert set(first) == set(TASKS)
  run_ids = set()
  for name in TASKS:
    task = first[name]
    assert not task.cached
    for key, (artifact,) in task.outputs.items():
      match = re.fullmatch(rf"{roots['open source']}/mnist-edgetpu/({UUID})/{name}/{UUID}/{key}",
                           artifact.uri)
      assert match, artifact.uri
      run_ids.add(match.group(1))
      bucket, prefix = kfp_v2_driver.split_s3_uri(artifact.uri)
      assert s3_store.keys(bucket, prefix), artifact.uri  # The outputs are in the bucket...
      local = kfp_v2_driver.PipelineSpecRunner.local_path(task.scratch_dir, artifact.uri)
      if key != kfp_v2_driver.EXECUTOR_LOGS:  # ...and nowhere in the task's container.
        assert not os.path.exists(local), local
        assert f"Local filepath {json.dumps(local)} does not exist" in task.warnings
    downloaded = os.path.join(task.scratch_dir, "s3")
    inputs = {kfp_v2_driver.PipelineSpecRunner.local_path(task.scratch_dir, a.uri)
              for artifacts in task.inputs.values() for a in artifacts}
    for directory, _, files in os.walk(downloaded):
      for file_name in files:  # Only the inputs the launcher downloaded, and the task's log.
        path = os.path.join(directory, file_name)
        assert path.startswith(tuple(inputs)) or path.endswith(
            f"/{kfp_v2_driver.EXECUTOR_LOGS}"), path
  assert len(run_ids) == 1
  logs = read_object(s3_store, only(first["Trainer"], kfp_v2_driver.EXECUTOR_LOGS).uri)
  assert b"kubeflow_v2_run_executor" in logs  # The task's console, uploaded by the launcher.


def test_inputs_arrive_as_each_backend_passes_them(runs):
  done, _ = runs
  evaluator = done["open source 2"]["Int8Evaluator"].executor_input
  model = evaluator["inputs"]["artifacts"]["model"]["artifacts"][0]
  assert re.fullmatch(r"\d+", model["name"])  # Its ML Metadata id.
  assert model["type"] == {"instanceSchema": ""}
  assert model["metadata"]["display_name"] == "model"
  assert json.loads(model["metadata"]["store_session_info"])["Provider"] == "s3"
  logs = evaluator["outputs"]["artifacts"][kfp_v2_driver.EXECUTOR_LOGS]["artifacts"][0]
  assert logs["type"] == {"schemaTitle": "system.Artifact"}
  assert evaluator["outputs"]["outputFile"].endswith("/tmp/kfp_outputs/output_metadata.json")
  vertex = done["vertex"]["Int8Evaluator"].executor_input
  assert "title: tfx.Model" in vertex["inputs"]["artifacts"]["model"]["artifacts"][0]["type"][
      "instanceSchema"]
  assert kfp_v2_driver.EXECUTOR_LOGS not in vertex["outputs"]["artifacts"]


def read_metrics(s3_store, task_run) -> dict:
  evaluation = only(task_run["Int8Evaluator"], "evaluation")
  return json.loads(read_object(s3_store, f"{evaluation.uri}/{evaluation_metrics.FILE_NAME}"))


def test_run_2_reuses_the_cached_data_steps_and_compares_with_run_1s_deployed_model(runs,
                                                                                     s3_store):
  done, roots = runs
  first, second = done["open source 1"], done["open source 2"]
  for name in DATA_TASKS:  # Same data, same code: KFP's cache hands back the same artifacts.
    assert second[name].cached and second[name].outputs == first[name].outputs, name
  for name in ("Trainer", "Int8Evaluator", "EdgeTpuPusher"):
    assert not second[name].cached, name

  assert read_metrics(s3_store, first)["reason"].endswith(
      f"no baseline (nothing deployed in {roots['open source']}/pushed_models yet)")
  metrics = read_metrics(s3_store, second)
  assert metrics["baseline"]["deployed"]["version"] == 1
  assert metrics["baseline"]["deployed"]["source_model_uri"] == only(first["Trainer"],
                                                                      "model").uri
  assert "baseline (deployed version 1) int8 accuracy" in metrics["reason"]
  blessing = only(second["Int8Evaluator"], "blessing")
  assert blessing.metadata["baseline_version"] == 1 and blessing.metadata["blessed"] == 1


def pushed_bytes_and_conversion(s3_store, task_run):
  """(model.tflite of the pushed version, convert_to_int8_tflite of the Trainer's model)."""
  version_dir = only(task_run["EdgeTpuPusher"], "pushed_model").metadata[
      pusher_constants.PUSHED_DESTINATION_KEY]
  pushed = read_object(s3_store, f"{version_dir}/{push_manifest.MODEL_FILE}")
  model_uri = only(task_run["Trainer"], "model").uri
  bucket, prefix = kfp_v2_driver.split_s3_uri(f"{model_uri}/Format-Serving")
  with tempfile.TemporaryDirectory() as local:
    for key in s3_store.keys(bucket, prefix + "/"):
      path = os.path.join(local, os.path.relpath(key, prefix))
      os.makedirs(os.path.dirname(path), exist_ok=True)
      s3_store.client().download_file(bucket, key, path)
    return pushed, int8_tflite.convert_to_int8_tflite(local)


def test_each_pushed_model_is_the_int8_conversion_of_its_trained_model(runs, s3_store):
  done, roots = runs
  for name, task_run in done.items():
    pushed, converted = pushed_bytes_and_conversion(s3_store, task_run)
    assert pushed == converted, name
  for name, versions in (("open source", ["1/", "2/"]), ("vertex", ["1/"])):
    bucket, prefix = kfp_v2_driver.split_s3_uri(f"{roots[name]}/pushed_models/")
    listed = s3_store.client().list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    assert [p["Prefix"][len(prefix):] for p in listed.get("CommonPrefixes", [])] == versions
