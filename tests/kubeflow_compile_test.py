"""`mnist-tfx kubeflow compile`: the spec's wiring, its formats, only object-store paths, and what
Kubeflow Pipelines' cache key sees. The paths are on the object store stand-in
(tests/fixtures_object_store.py): compiling reads the data to fingerprint it."""

import json
import os
import shutil
import socket
import subprocess
import sys

from mnist_tfx.kubeflow import runner
import pytest
import yaml

from components.mnist_example_gen import idx
from core import paths
from mnist_tfx import cli
from pipeline import code_fingerprint
from pipeline import object_store
from pipeline import pipeline as pipeline_def
from tests import fixtures_object_store
from tests import kfp_v2_driver
from tests import mnist_slices

pytestmark = pytest.mark.integration  # Compiles the pipeline (imports TFX).

IMAGE = "registry.example/mnist-edgetpu-tfx@sha256:" + "0123456789abcdef" * 4
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEAM_ARG = "--runner=DataflowRunner"
CONTAINER_TASKS = {"MnistExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                   "AnomaliesGate", "Trainer", "Int8Evaluator", "EdgeTpuPusher"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, s3_mnist_slice):
  output = str(tmp_path_factory.mktemp("spec") / "pipeline.yaml")
  root = s3_mnist_slice.rsplit("/", 1)[0] + "/pipelines"
  job = runner.compile_pipeline(output, image=IMAGE, pipeline_root=root, data_dir=s3_mnist_slice,
                                beam_pipeline_args=[BEAM_ARG], train_config={"epochs": 3})
  return output, job, root


def parameter(tasks, task, name):
  return tasks[task]["inputs"]["parameters"][name]["runtimeValue"]["constant"]


def test_compiles_every_component_as_a_container_the_open_source_backend_accepts(compiled):
  output, _, _ = compiled
  spec = kfp_v2_driver.read_pipeline_spec(output)
  tasks = spec["root"]["dag"]["tasks"]
  assert set(tasks) == CONTAINER_TASKS  # No Resolver: the backend would refuse the run.
  executors = spec["deploymentSpec"]["executors"].values()
  assert all(set(executor) == {"container"} for executor in executors)
  kfp_v2_driver.check_run_creation(spec)  # What the API server checks when a run is created.
  assert "AnomaliesGate" in tasks["Trainer"]["dependentTasks"]  # Nothing trains before the gate.
  assert spec["defaultPipelineRoot"] == compiled[2]
  for executor in executors:
    container = executor["container"]
    assert container["image"] == IMAGE
    assert container["command"] == runner.ENTRYPOINT_COMMAND
    # Each task's own input definitions, which the entrypoint restores input types from.
    assert "--json_serialized_inputs_spec_args" in container["args"]
    assert BEAM_ARG in container["args"]  # Beam args reach every component (Beam-based or not).
    # Paths are on s3://: every Beam worker imports TensorFlow's s3:// filesystem.
    assert f"--beam_plugins={object_store.S3_FILESYSTEM_MODULE}" in container["args"]
  executor_classes = {e["container"]["args"][e["container"]["args"].index(
      "--executor_class_path") + 1] for e in executors}
  assert {"components.mnist_example_gen.executor.Executor",
          "components.statistics_gen.executor.Executor",
          "components.example_validator.executor.Executor",
          "components.anomalies_gate.executor.Executor",
          "components.evaluator.executor.Executor",
          "components.pusher.executor.Executor"} <= executor_classes


def test_every_path_in_the_spec_is_one_the_pods_can_read(compiled, s3_mnist_slice):
  output, _, root = compiled
  with open(output) as f:
    text = f.read()
  # Nothing of the compiling machine: no checkout, venv, home, working or temporary directory.
  for local in {PROJECT_ROOT, sys.prefix, os.path.expanduser("~"), os.getcwd(),
                os.path.dirname(output), "/tmp", "/work"}:
    assert local not in text, local
  tasks = kfp_v2_driver.read_pipeline_spec(output)["root"]["dag"]["tasks"]
  assert parameter(tasks, "ImportSchemaGen", "schema_file") == (
      "python-package://pipeline/schema/schema.pbtxt")
  assert parameter(tasks, "MnistExampleGen", "input_dir") == s3_mnist_slice
  assert json.loads(parameter(tasks, "Trainer", "custom_config"))["checkpoint_dir"] == (
      f"{root}/{paths.TRAINER_CHECKPOINTS_DIR}")
  # The evaluator's baseline is what the pusher deploys there.
  for task in ("Int8Evaluator", "EdgeTpuPusher"):
    assert parameter(tasks, task, "push_destination") == f"{root}/{paths.PUSHED_MODELS_DIR}"


def test_the_cache_key_follows_the_data_and_the_code_and_skips_what_depends_on_deployment(
    compiled, s3_mnist_slice):
  """What Kubeflow Pipelines' cache key holds: parameter values, image, command and arguments
  (tests/kfp_v2_driver.py, cache_fingerprint)."""
  output, _, _ = compiled
  spec = kfp_v2_driver.read_pipeline_spec(output)
  tasks = spec["root"]["dag"]["tasks"]
  assert parameter(tasks, "MnistExampleGen", "input_fingerprint") == idx.input_fingerprint(
      s3_mnist_slice)
  built = {c.id: c for c in pipeline_def.create_pipeline("s3://b/r", "s3://b/d").components}
  for task in CONTAINER_TASKS - {"ImportSchemaGen", "Trainer"}:
    assert parameter(tasks, task, code_fingerprint.EXEC_PROPERTY) == (
        code_fingerprint.component_fingerprint(built[task])), task
  assert json.loads(parameter(tasks, "Trainer", "custom_config"))["code_fingerprint"] == (
      code_fingerprint.fingerprint())
  for task in CONTAINER_TASKS:
    caching = tasks[task].get("cachingOptions", {}).get("enableCache", False)
    assert caching == (task not in pipeline_def.ALWAYS_RUN), task


def test_changed_data_at_the_same_path_changes_the_cache_key(tmp_path, s3_store,
                                                             mnist_slice_dir):
  data = shutil.copytree(mnist_slice_dir, str(tmp_path / "mnist"))
  uri = fixtures_object_store.upload_dir(s3_store, data,
                                         f"s3://{s3_store.new_bucket('changing')}/mnist")

  def example_gen_cache_key():
    output = str(tmp_path / "pipeline.yaml")
    runner.compile_pipeline(output, image=IMAGE, pipeline_root=uri + "-root", data_dir=uri)
    spec = kfp_v2_driver.read_pipeline_spec(output)
    task = spec["root"]["dag"]["tasks"]["MnistExampleGen"]
    component = spec["components"][task["componentRef"]["name"]]
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
    executor_input = {"inputs": {"parameterValues": kfp_v2_driver.task_parameters(task)},
                      "outputs": {"artifacts": {}}}
    return kfp_v2_driver.cache_fingerprint(executor_input, executor["container"])

  before = example_gen_cache_key()
  assert example_gen_cache_key() == before  # Compiling again changes nothing...
  mnist_slices.flip_pixel(os.path.join(data, idx.EVAL_IMAGES + idx.GZIP_SUFFIX))
  fixtures_object_store.upload_dir(s3_store, data, uri)  # ...new bytes at the same path do.
  assert example_gen_cache_key() != before


def test_a_spec_with_resolver_tasks_is_refused_by_the_open_source_backend(tmp_path):
  """What TFX compiles for a Resolver, as the previous wiring had, and the backend's answer."""
  from tfx import v1 as tfx
  resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
  ).with_id("latest_blessed_model_resolver")
  pipeline = tfx.dsl.Pipeline(pipeline_name="with-resolver", pipeline_root="s3://b/root",
                              components=[resolver])
  job = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=IMAGE, use_pipeline_spec_2_1=True),
      output_dir=str(tmp_path)).run(pipeline, write_out=False)
  with pytest.raises(kfp_v2_driver.RunCreationRefused) as refused:
    kfp_v2_driver.check_run_creation(job["pipelineSpec"])
  assert refused.value.status == 500 and refused.value.body["code"] == 13
  assert str(refused.value).startswith(
      'Internal error: error processing component name="latest_blessed_model_resolver-model-'
      'blessing-resolver": executor(label="latest_blessed_model_resolver-model-blessing-'
      'resolver_executor"): non-container and non-importer executor not implemented\n'
      "Failed to compile job")


def test_json_on_request_is_the_pipeline_job_vertex_takes(compiled, tmp_path, s3_mnist_slice):
  _, job, root = compiled
  output = str(tmp_path / "pipeline.json")
  runner.compile_pipeline(output, image=IMAGE, pipeline_root=root, data_dir=s3_mnist_slice,
                          beam_pipeline_args=[BEAM_ARG], train_config={"epochs": 3})
  with open(output) as f:
    written = json.load(f)
  assert written["runtimeConfig"]["gcsOutputDirectory"] == root
  assert written["pipelineSpec"] == kfp_v2_driver.read_pipeline_spec(output)
  assert written["pipelineSpec"]["root"] == job["pipelineSpec"]["root"]


def test_compile_command_passes_the_shared_options(tmp_path, capsys, s3_mnist_slice):
  output = tmp_path / "pipeline.yaml"
  assert cli.main(["kubeflow", "compile", "--output", str(output), "--image", IMAGE,
                   "--pipeline-root", f"{s3_mnist_slice}-root", "--data-dir", s3_mnist_slice,
                   "--epochs", "4", "--min-int8-accuracy", "0.985"]) == 0
  captured = capsys.readouterr()
  assert str(output) in captured.out
  assert "warning" not in captured.err  # A digest: nothing to warn about.
  with open(output) as f:
    tasks = yaml.safe_load(f)["root"]["dag"]["tasks"]
  assert json.loads(parameter(tasks, "Trainer", "custom_config"))["epochs"] == 4
  assert parameter(tasks, "Int8Evaluator", "min_int8_accuracy") == 0.985


def test_pods_get_the_object_stores_settings_and_secrets(tmp_path, s3_mnist_slice):
  """What the open-source backend needs for MinIO through s3://: the endpoint as plain variables,
  the credentials from the namespace's secret (platform spec, as kfp-kubernetes writes it)."""
  output = str(tmp_path / "pipeline.yaml")
  assert cli.main([
      "kubeflow", "compile", "--output", output, "--image", IMAGE, "--pipeline-root",
      f"{s3_mnist_slice}-root", "--data-dir", s3_mnist_slice,
      "--env", "AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000", "--env", "AWS_REGION=minio",
      "--secret-env", "mlpipeline-minio-artifact:accesskey=AWS_ACCESS_KEY_ID",
      "--secret-env", "mlpipeline-minio-artifact:secretkey=AWS_SECRET_ACCESS_KEY"]) == 0
  spec = kfp_v2_driver.read_pipeline_spec(output)
  executors = spec["deploymentSpec"]["executors"]
  for executor in executors.values():
    assert executor["container"]["env"] == [
        {"name": "AWS_ENDPOINT_URL", "value": "http://minio-service.kubeflow:9000"},
        {"name": "AWS_REGION", "value": "minio"}]
  with open(output) as f:
    text = f.read()
  # Plain YAML, as KFP's compiler writes it: no anchors or aliases for the objects met twice.
  assert "&id" not in text and "*id" not in text
  json_output = str(tmp_path / "pipeline.json")
  runner.compile_pipeline(json_output, image=IMAGE, pipeline_root=f"{s3_mnist_slice}-root",
                          data_dir=s3_mnist_slice, env={
                              "AWS_ENDPOINT_URL": "http://minio-service.kubeflow:9000",
                              "AWS_REGION": "minio"})
  with open(json_output) as f:
    assert spec == json.load(f)["pipelineSpec"]  # The same spec in both forms.
  platform = kfp_v2_driver.read_platform_spec(output)["platforms"]["kubernetes"]
  assert set(platform["deploymentSpec"]["executors"]) == set(executors)
  for config in platform["deploymentSpec"]["executors"].values():
    assert config == {"secretAsEnv": [{"secretName": "mlpipeline-minio-artifact", "keyToEnv": [
        {"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
        {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}]}


@pytest.mark.parametrize("argv, message", [
    (["--env", "AWS_SECRET_ACCESS_KEY=abc"], "--env AWS_SECRET_ACCESS_KEY: a secret would be "
     "stored in the spec in clear; give it with --secret-env SECRET:KEY=AWS_SECRET_ACCESS_KEY"),
    (["--secret-env", "s:k=V", "--output", "pipeline.json"], "--secret-env needs a .yaml spec"),
])
def test_secrets_stay_out_of_the_spec(argv, message, tmp_path, capsys, s3_mnist_slice,
                                      monkeypatch):
  monkeypatch.chdir(tmp_path)
  code = cli.main(["kubeflow", "compile", "--image", IMAGE, "--pipeline-root",
                   f"{s3_mnist_slice}-root", "--data-dir", s3_mnist_slice, *argv])
  assert code == 2
  assert message in capsys.readouterr().err
  assert not os.listdir(tmp_path)
  assert "abc" not in capsys.readouterr().out


@pytest.mark.parametrize("option,value,message", [
    ("--pipeline-root", "output", "is not an object-store URI"),
    ("--pipeline-root", "/mnt/shared/root", "shares no filesystem"),
    ("--data-dir", "file:///data/mnist", "Give gs://BUCKET/PATH or s3://BUCKET/PATH"),
    ("--push-destination", "/models", "is not an object-store URI"),
    ("--pipeline-root", "s3://", "is not an object-store URI"),
    ("--pipeline-root", "minio://mlpipeline/v2/artifacts",
     "minio:// is a name only the Kubeflow Pipelines launcher knows; the components reach MinIO "
     "through s3://. Pass s3://mlpipeline/v2/artifacts and give the pods MinIO's endpoint and "
     "credentials, e.g. --env AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000 --secret-env "
     "mlpipeline-minio-artifact:accesskey=AWS_ACCESS_KEY_ID"),
])
def test_paths_the_pods_cannot_read_are_refused_and_nothing_is_written(option, value, message,
                                                                        tmp_path, capsys):
  paths = {"--pipeline-root": "gs://bucket/pipelines", "--data-dir": "gs://bucket/mnist",
           option: value}
  output = tmp_path / "pipeline.yaml"
  argv = ["kubeflow", "compile", "--output", str(output), "--image", IMAGE]
  for name, path in paths.items():
    argv += [name, path]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert f"{option} {value!r}" in err and message in err
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize("contents", ["empty", "no_bucket"])
def test_data_that_cannot_be_read_here_is_refused_and_nothing_is_written(
    contents, s3_store, tmp_path, capsys):
  """An empty prefix of a bucket that exists is no data; a bucket that does not is named."""
  bucket = s3_store.new_bucket() if contents == "empty" else "no-such-bucket-anywhere"
  output = tmp_path / "pipeline.yaml"
  code = cli.main(["kubeflow", "compile", "--output", str(output), "--image", IMAGE,
                   "--pipeline-root", f"s3://{bucket}/root", "--data-dir",
                   f"s3://{bucket}/mnist"])
  assert code == 2
  cause = ("holds none of the MNIST files (the four standard names, gzipped or raw)"
           if contents == "empty" else f"cannot be read here: bucket {bucket!r} does not exist "
           f"at the S3 store at {s3_store.endpoint}")
  assert capsys.readouterr().err.strip().splitlines()[-1] == (
      f"mnist-tfx kubeflow compile failed: --data-dir 's3://{bucket}/mnist' {cause}")
  assert not os.listdir(tmp_path)


def test_a_pipeline_root_in_a_bucket_that_does_not_exist_is_refused(s3_mnist_slice, s3_store,
                                                                    tmp_path, capsys):
  argv = ["kubeflow", "compile", "--output", str(tmp_path / "pipeline.yaml"), "--image", IMAGE,
          "--pipeline-root", "s3://no-such-root-bucket/root", "--data-dir", s3_mnist_slice]
  assert cli.main(argv) == 2
  assert capsys.readouterr().err.strip().splitlines()[-1] == (
      "mnist-tfx kubeflow compile failed: --pipeline-root 's3://no-such-root-bucket/root': "
      f"bucket 'no-such-root-bucket' does not exist at the S3 store at {s3_store.endpoint}")
  assert not os.listdir(tmp_path)


def compile_process(argv, cwd, env=None, python_options=()):
  """`mnist-tfx kubeflow compile ARGV` in a process of its own, as a user runs it."""
  return subprocess.run([sys.executable, *python_options, "-m", "mnist_tfx.cli", "kubeflow",
                         "compile", "--image", IMAGE, *argv], cwd=cwd, env=env,
                        capture_output=True, text=True, check=False, timeout=60)


def closed_port_endpoint() -> str:
  with socket.socket() as probe:  # A port nothing listens on.
    probe.bind(("127.0.0.1", 0))
    return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_an_unreachable_store_is_named_with_the_cause_and_nothing_is_written(tmp_path):
  """The README's MinIO example with no store at the endpoint: refused at once, not after
  tensorflow-io's retries, and not mistaken for a store without the data."""
  endpoint = closed_port_endpoint()
  env = {**os.environ, **fixtures_object_store.ObjectStoreStandIn(endpoint).env}
  env.pop("S3_ENDPOINT", None)
  done = compile_process([
      "--pipeline-root", "s3://mlpipeline/mnist-edgetpu", "--data-dir", "s3://mlpipeline/mnist",
      "--env", "AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000", "--secret-env",
      "mlpipeline-minio-artifact:accesskey=AWS_ACCESS_KEY_ID"], cwd=tmp_path, env=env)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      "mnist-tfx kubeflow compile failed: --data-dir 's3://mlpipeline/mnist' cannot be read "
      f"here: cannot reach the S3 store at {endpoint}: connection refused")
  assert not os.listdir(tmp_path)


def test_missing_credentials_are_named(s3_store, s3_mnist_slice, tmp_path, capsys, monkeypatch):
  for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
  monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
  monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
  output = tmp_path / "out" / "pipeline.yaml"
  assert cli.main(["kubeflow", "compile", "--output", str(output), "--image", IMAGE,
                   "--pipeline-root", f"{s3_mnist_slice}-root", "--data-dir",
                   s3_mnist_slice]) == 2
  assert capsys.readouterr().err.strip().splitlines()[-1] == (
      f"mnist-tfx kubeflow compile failed: --data-dir {s3_mnist_slice!r} cannot be read here: "
      f"no S3 credentials for the S3 store at {s3_store.endpoint}: set AWS_ACCESS_KEY_ID and "
      "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
  assert not output.parent.exists()


@pytest.mark.parametrize("option, value, message", [
    ("--pipeline-root", "/mnt/shared/root", "is not an object-store URI"),
    ("--pipeline-root", "minio://mlpipeline/v2", "minio:// is a name only the Kubeflow Pipelines"),
    ("--data-dir", "data/mnist", "is not an object-store URI"),
    ("--push-destination", "/models", "is not an object-store URI"),
])
def test_paths_are_refused_before_tensorflow_is_imported(option, value, message, tmp_path):
  """The refusals come right after the arguments are parsed: the process never imports
  TensorFlow, TFX or an object store's client (what Python's -X importtime lists)."""
  paths = {"--pipeline-root": "s3://bucket/pipelines", "--data-dir": "s3://bucket/mnist",
           option: value}
  done = compile_process([arg for item in paths.items() for arg in item], cwd=tmp_path,
                         python_options=["-X", "importtime"])
  assert done.returncode == 2, done.stderr[-2000:]
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith(f"mnist-tfx kubeflow compile failed: {option} {value!r}")
  assert message in last
  imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
              if line.startswith("import time:")}
  assert imported and not imported & {"tensorflow", "tfx", "tensorflow_io", "boto3", "botocore"}
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize("image, warned", [
    ("registry.example/mnist-edgetpu-tfx:latest", "is tagged latest"),
    ("registry.example:5000/mnist-edgetpu-tfx", "has no tag"),
    ("mnist-edgetpu-tfx", "has no tag"),
    ("registry.example:5000/mnist-edgetpu-tfx:2026-12-01", None),
    (IMAGE, None),
])
def test_a_mutable_image_tag_is_warned_about(image, warned):
  warning = runner.mutable_image_warning(image)
  if warned is None:
    assert warning is None
  else:
    assert warning.startswith(f"--image {image} {warned}: Kubeflow Pipelines' cache key")
    assert "@sha256:" in warning


def test_compile_prints_the_warning(tmp_path, capsys, s3_mnist_slice):
  output = tmp_path / "pipeline.yaml"
  image = "registry.example/mnist-edgetpu-tfx:latest"
  assert cli.main(["kubeflow", "compile", "--output", str(output), "--image", image,
                   "--pipeline-root", f"{s3_mnist_slice}-root", "--data-dir",
                   s3_mnist_slice]) == 0
  assert capsys.readouterr().err.startswith(f"warning: {runner.mutable_image_warning(image)}")
  assert output.exists()


def test_help_explains_every_option(capsys):
  for command in ("compile", "submit"):
    with pytest.raises(SystemExit):
      cli.main(["kubeflow", command, "--help"])
    text = capsys.readouterr().out
    for option in ("--image", "--pipeline-root", "--data-dir", "--beam-arg", "--epochs",
                   "--min-int8-accuracy", "--push-destination", "--edgetpu-compiler", "--env",
                   "--secret-env"):
      assert option in text, (command, option)
    assert "--paths-mounted-in-pods" not in text
  with pytest.raises(SystemExit):
    cli.main(["kubeflow", "submit", "--help"])
  text = capsys.readouterr().out
  for option in ("--host", "--experiment", "--run-name", "--namespace", "--token-path",
                 "--api-timeout"):
    assert option in text
