"""The stand-in backend's own rules (tests/kfp_v2_driver.py), on small hand-written specs whose
tasks are `python -c` commands, against the object store stand-in."""

import json
import os
import sys

import pytest

from tests import kfp_v2_driver

pytestmark = pytest.mark.integration  # Starts the object store stand-in and task processes.

# A task that records what its container got, writes one output itself and an ExecutorOutput.
TASK_SCRIPT = """
import json, os, sys
executor_input = json.loads(sys.argv[1])
print("environment:", json.dumps(sorted(os.environ)))
print("from secret:", os.environ.get("FROM_SECRET"))
print("cwd:", os.getcwd())
out = executor_input["outputs"]["artifacts"]["out"]["artifacts"][0]
mode = os.environ.get("STAND_IN_MODE", "")
if mode == "fail":
  sys.exit(3)
if mode != "no-output-file":
  os.makedirs(os.path.dirname(executor_input["outputs"]["outputFile"]), exist_ok=True)
  uri = out["uri"] if mode != "outside" else "s3://elsewhere/x"
  with open(executor_input["outputs"]["outputFile"], "w") as f:
    json.dump({"artifacts": {"out": {"artifacts": [{"uri": uri, "metadata": {
        "flag": True, "count": 2, "names": ["a"]}}]}}}, f)
"""


def spec(enable_cache=True):
  """A pipeline of one importer and one container task consuming its artifact."""
  artifact_type = {"schemaTitle": "system.Dataset"}
  return {
      "schemaVersion": "2.1.0",
      "pipelineInfo": {"name": "stand-in-test"},
      "root": {"dag": {"tasks": {
          "importer": {"componentRef": {"name": "importer"}, "taskInfo": {"name": "importer"}},
          "task": {"componentRef": {"name": "task"}, "taskInfo": {"name": "task"},
                   "cachingOptions": {"enableCache": enable_cache},
                   "inputs": {"artifacts": {"data": {"taskOutputArtifact": {
                       "producerTask": "importer", "outputArtifactKey": "artifact"}}},
                              "parameters": {"p": {"runtimeValue": {"constant": "x"}}}}}}}},
      "components": {
          "importer": {"executorLabel": "importer",
                       "outputDefinitions": {"artifacts": {"artifact": {
                           "artifactType": artifact_type}}}},
          "task": {"executorLabel": "task",
                   "inputDefinitions": {"parameters": {
                       "p": {"parameterType": "STRING"},
                       "q": {"parameterType": "STRING", "defaultValue": "default"}}},
                   "outputDefinitions": {"artifacts": {"out": {
                       "artifactType": artifact_type}}}}},
      "deploymentSpec": {"executors": {
          "importer": {"importer": {"artifactUri": {"constant": "s3://BUCKET/data"},
                                    "typeSchema": artifact_type}},
          "task": {"container": {"image": "stand-in", "command": ["python", "-c", TASK_SCRIPT],
                                 "args": ["{{$}}"], "env": [{"name": "FROM_SPEC",
                                                             "value": "1"}]}}}},
  }


@pytest.fixture()
def runner(s3_store, tmp_path):
  bucket = s3_store.new_bucket("driver")
  client = s3_store.client()
  for key, body in (("data/a.txt", b"a"), ("data/sub/b.txt", b"b"), ("data_sibling/c", b"c")):
    client.put_object(Bucket=bucket, Key=key, Body=body)
  pipeline_spec = json.loads(json.dumps(spec()).replace("BUCKET", bucket))
  platform_spec = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {"task": {
      "secretAsEnv": [{"secretName": "credentials", "keyToEnv": [
          {"secretKey": "accesskey", "envVar": "FROM_SECRET"}]}]}}}}}}
  driver = kfp_v2_driver.PipelineSpecRunner(
      pipeline_spec, kfp_v2_driver.Backend.OPEN_SOURCE, client, str(tmp_path / "pods"),
      kfp_v2_driver.SubprocessTaskLauncher(python_path=str(tmp_path / "site")), {"PLATFORM": "1"},
      platform_spec, secrets={"credentials": {"accesskey": "key-id"}})
  driver.root = f"s3://{bucket}/root"
  return driver


def test_a_task_runs_in_its_own_container_with_its_pods_environment(runner, monkeypatch):
  monkeypatch.setenv("FROM_THE_TEST_PROCESS", "1")
  tasks = runner.run(runner.root)
  task = tasks["task"]
  with open(runner.local_path(task.scratch_dir, task.outputs["executor-logs"][0].uri)) as f:
    log = f.read()
  environment = json.loads(log.split("environment: ", 1)[1].splitlines()[0])
  assert "FROM_THE_TEST_PROCESS" not in environment
  assert {"FROM_SPEC", "PLATFORM", "KFP_POD_NAME", "KFP_POD_UID", "HOME", "TMPDIR",
          "METADATA_GRPC_SERVICE_HOST"} <= set(environment)
  assert "from secret: key-id" in log  # The platform spec's secretAsEnv.
  assert f"cwd: {task.scratch_dir}" in log
  # The input, downloaded under /s3 of the container, with the sibling key 2.5 lists too.
  data = runner.local_path(task.scratch_dir, tasks["importer"].outputs["artifact"][0].uri)
  with open(os.path.join(data, "sub", "b.txt")) as f:
    assert f.read() == "b"
  assert os.path.exists(os.path.join(os.path.dirname(data), "data_sibling", "c"))
  sent = task.executor_input
  assert sent["inputs"]["artifacts"]["data"]["artifacts"][0]["name"] == "1"
  assert sent["inputs"]["parameterValues"] == {"p": "x"}  # Defaults come from the launcher.
  [out] = task.outputs["out"]
  assert out.metadata == {"flag": 1, "count": 2, "names": {"list": ["a"]}, "display_name": "out",
                          "store_session_info": kfp_v2_driver.S3_SESSION_INFO}
  local = runner.local_path(task.scratch_dir, out.uri)
  assert task.warnings == [f"Local filepath {json.dumps(local)} does not exist"]


def test_a_second_run_is_served_from_the_cache_unless_the_task_disables_it(runner):
  first = runner.run(runner.root)
  second = runner.run(runner.root)
  assert second["task"].cached and second["task"].outputs == first["task"].outputs
  runner.spec["root"]["dag"]["tasks"]["task"]["cachingOptions"] = {}
  third = runner.run(runner.root)
  assert not third["task"].cached and third["task"].outputs["out"][0].id > first["task"].outputs[
      "out"][0].id


@pytest.mark.parametrize("mode, error", [
    ("fail", "failed to execute component: exit status 3"),
    ("outside", 'URI "s3://elsewhere/x" does not have expected bucket prefix'),
])
def test_a_failing_task_fails_the_run(runner, mode, error):
  runner.platform_env["STAND_IN_MODE"] = mode
  with pytest.raises(kfp_v2_driver.RunFailed, match=error):
    runner.run(runner.root)


@pytest.mark.parametrize("secrets, error", [
    ({}, 'task: CreateContainerConfigError: secret "credentials" not found'),
    ({"credentials": {}}, "task: CreateContainerConfigError: couldn't find key accesskey in "
     "Secret kubeflow/credentials"),
])
def test_a_pod_whose_secret_is_missing_never_starts(runner, secrets, error):
  runner.secrets = secrets
  with pytest.raises(kfp_v2_driver.RunFailed, match=error):
    runner.run(runner.root)


def test_no_output_file_is_an_empty_executor_output(runner):
  runner.platform_env["STAND_IN_MODE"] = "no-output-file"
  [out] = runner.run(runner.root)["task"].outputs["out"]
  assert out.metadata == {"display_name": "out",
                          "store_session_info": kfp_v2_driver.S3_SESSION_INFO}


@pytest.mark.parametrize("root, problem", [
    ("/tmp/pipeline-root", 'unrecognized pipeline root format: "/tmp/pipeline-root"'),
    ("file:///tmp/root", 'unsupported Cloud bucket: "file:///tmp/root"'),
])
def test_the_root_driver_refuses_roots_the_backend_cannot_store_in(root, problem, runner):
  with pytest.raises(kfp_v2_driver.RunFailed) as failed:
    runner.run(root)
  assert str(failed.value).startswith("driver.RootDAG(pipelineName=stand-in-test, runID=")
  assert str(failed.value).endswith(f"failed: parse bucket config failed: {problem}")
  for accepted in ("minio://mlpipeline/v2/artifacts", "gs://b/r", "s3://b"):
    kfp_v2_driver.check_pipeline_root(accepted, "p", "r")


def test_a_directory_marker_object_is_downloaded_as_a_file_and_breaks_the_next(s3_store,
                                                                               tmp_path):
  """What zero-byte `.../` objects do to the next task's launcher (object_store.go DownloadBlob),
  the reason the entrypoint deletes the GCS ones."""
  bucket = s3_store.new_bucket("markers")
  client = s3_store.client()
  for key, body in (("model/Format-Serving/", b""), ("model/Format-Serving/saved_model.pb",
                                                     b"pb")):
    client.put_object(Bucket=bucket, Key=key, Body=body)
  store = kfp_v2_driver.StoreSide(client)
  with pytest.raises(kfp_v2_driver.RunFailed, match='failed to download input artifact "model" '
                     f'from remote storage URI "s3://{bucket}/model"'):
    store.download("model", f"s3://{bucket}/model", str(tmp_path / "model"))
  assert os.path.isfile(tmp_path / "model" / "Format-Serving")


def test_mlmd_keeps_what_it_can_store():
  assert [kfp_v2_driver.mlmd_roundtrip(v) for v in (True, 2.0, 0.5, "s", [1], {"a": 1})] == [
      1, 2, 0.5, "s", {"list": [1]}, {"struct": {"a": 1}}]
  with pytest.raises(kfp_v2_driver.RunFailed, match="unknown/unsupported value type"):
    kfp_v2_driver.mlmd_roundtrip(None)


def test_subprocess_launcher_runs_this_python(tmp_path):
  command = kfp_v2_driver.TaskCommand(["python", "-c", "import sys; print(sys.executable)"],
                                      {"HOME": str(tmp_path)}, str(tmp_path), "image")
  with open(tmp_path / "log", "wb") as log:
    assert kfp_v2_driver.SubprocessTaskLauncher(str(tmp_path))(command, log) == 0
  assert os.path.realpath((tmp_path / "log").read_text().strip()) == os.path.realpath(
      sys.executable)
