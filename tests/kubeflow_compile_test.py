"""`mnist-tfx kubeflow compile`: the spec's wiring, its formats and only paths the pods can read."""

import json
import os
import sys

from mnist_tfx.kubeflow import runner
import pytest
import yaml

from core import paths
from mnist_tfx import cli
from tests import kfp_v2_driver

pytestmark = pytest.mark.integration  # Compiles the pipeline (imports TFX).

IMAGE = "registry.example/mnist-edgetpu-tfx:test"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEAM_ARG = "--runner=DataflowRunner"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
  output = str(tmp_path_factory.mktemp("spec") / "pipeline.yaml")
  job = runner.compile_pipeline(
      output, image=IMAGE, pipeline_root="gs://bucket/pipelines", data_dir="gs://bucket/mnist",
      beam_pipeline_args=[BEAM_ARG], train_config={"epochs": 3})
  return output, job


def test_compiles_every_component_with_the_data_gate_before_training(compiled):
  output, _ = compiled
  spec = kfp_v2_driver.read_pipeline_spec(output)
  tasks = spec["root"]["dag"]["tasks"]
  assert set(tasks) == {
      "MnistExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "AnomaliesGate",
      "Trainer", "Int8Evaluator", "EdgeTpuPusher",
      # KFP v2 splits the latest-blessed-model resolver into a blessing and a model lookup.
      "latest_blessed_model_resolver-model-blessing-resolver",
      "latest_blessed_model_resolver-model-resolver"}
  assert "AnomaliesGate" in tasks["Trainer"]["dependentTasks"]  # Nothing trains before the gate.
  assert spec["defaultPipelineRoot"] == "gs://bucket/pipelines"
  containers = [e["container"] for e in spec["deploymentSpec"]["executors"].values()
                if "container" in e]
  assert len(containers) == 8
  for container in containers:
    assert container["image"] == IMAGE
    assert container["command"] == runner.ENTRYPOINT_COMMAND
    # Each task's own input definitions, which the entrypoint restores input types from.
    assert "--json_serialized_inputs_spec_args" in container["args"]
    assert BEAM_ARG in container["args"]  # Beam args reach every component (Beam-based or not).
  executor_classes = {c["args"][c["args"].index("--executor_class_path") + 1]
                      for c in containers}
  assert {"components.mnist_example_gen.executor.Executor",
          "components.statistics_gen.executor.Executor",
          "components.example_validator.executor.Executor",
          "components.anomalies_gate.executor.Executor",
          "components.evaluator.executor.Executor",
          "components.pusher.executor.Executor"} <= executor_classes


def test_every_path_in_the_spec_is_one_the_pods_can_read(compiled):
  output, _ = compiled
  with open(output) as f:
    text = f.read()
  # Nothing of the compiling machine: no checkout, venv, home, working or temporary directory.
  for local in {PROJECT_ROOT, sys.prefix, os.path.expanduser("~"), os.getcwd(),
                os.path.dirname(output), "/tmp", "/work"}:
    assert local not in text, local
  tasks = kfp_v2_driver.read_pipeline_spec(output)["root"]["dag"]["tasks"]

  def parameter(task, name):
    return tasks[task]["inputs"]["parameters"][name]["runtimeValue"]["constant"]

  assert parameter("ImportSchemaGen", "schema_file") == (
      "python-package://pipeline/schema/schema.pbtxt")
  assert parameter("MnistExampleGen", "input_dir") == "gs://bucket/mnist"
  assert json.loads(parameter("Trainer", "custom_config"))["checkpoint_dir"] == (
      f"gs://bucket/pipelines/{paths.TRAINER_CHECKPOINTS_DIR}")
  assert parameter("EdgeTpuPusher", "push_destination") == (
      f"gs://bucket/pipelines/{paths.PUSHED_MODELS_DIR}")


def test_json_on_request_is_the_pipeline_job_vertex_takes(compiled, tmp_path):
  _, job = compiled
  output = str(tmp_path / "pipeline.json")
  runner.compile_pipeline(output, image=IMAGE, pipeline_root="gs://bucket/pipelines",
                          data_dir="gs://bucket/mnist", beam_pipeline_args=[BEAM_ARG],
                          train_config={"epochs": 3})
  with open(output) as f:
    written = json.load(f)
  assert written["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/pipelines"
  assert written["pipelineSpec"] == kfp_v2_driver.read_pipeline_spec(output)
  assert written["pipelineSpec"]["root"] == job["pipelineSpec"]["root"]


def test_compile_command_passes_the_shared_options(tmp_path, capsys):
  output = tmp_path / "pipeline.yaml"
  assert cli.main(["kubeflow", "compile", "--output", str(output), "--image", IMAGE,
                   "--pipeline-root", "gs://bucket/pipelines", "--data-dir", "gs://bucket/mnist",
                   "--epochs", "4", "--min-int8-accuracy", "0.985"]) == 0
  assert str(output) in capsys.readouterr().out
  with open(output) as f:
    tasks = yaml.safe_load(f)["root"]["dag"]["tasks"]

  def parameter(task, name):
    return tasks[task]["inputs"]["parameters"][name]["runtimeValue"]["constant"]

  assert json.loads(parameter("Trainer", "custom_config"))["epochs"] == 4
  assert parameter("Int8Evaluator", "min_int8_accuracy") == 0.985


@pytest.mark.parametrize("option,value,message", [
    ("--pipeline-root", "output", "is relative"),
    ("--data-dir", "/data/mnist", "pods cannot read"),
    ("--push-destination", "/models", "pods cannot read"),
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


def test_local_paths_are_accepted_when_mounted_in_the_pods(tmp_path):
  output = str(tmp_path / "pipeline.yaml")
  runner.compile_pipeline(output, image=IMAGE, pipeline_root="/mnt/shared/root",
                          data_dir="/mnt/shared/mnist", paths_mounted_in_pods=True)
  tasks = kfp_v2_driver.read_pipeline_spec(output)["root"]["dag"]["tasks"]
  assert tasks["MnistExampleGen"]["inputs"]["parameters"]["input_dir"]["runtimeValue"][
      "constant"] == "/mnt/shared/mnist"
  with pytest.raises(runner.PipelineInputError, match="is relative"):
    runner.compile_pipeline(output, image=IMAGE, pipeline_root="root", data_dir="/mnt/mnist",
                            paths_mounted_in_pods=True)


def test_help_explains_every_option(capsys):
  for command in ("compile", "submit"):
    with pytest.raises(SystemExit):
      cli.main(["kubeflow", command, "--help"])
    text = capsys.readouterr().out
    for option in ("--image", "--pipeline-root", "--data-dir", "--paths-mounted-in-pods",
                   "--beam-arg", "--epochs", "--min-int8-accuracy", "--push-destination",
                   "--edgetpu-compiler"):
      assert option in text, (command, option)
  with pytest.raises(SystemExit):
    cli.main(["kubeflow", "submit", "--help"])
  text = capsys.readouterr().out
  for option in ("--host", "--experiment", "--run-name", "--namespace", "--token-path"):
    assert option in text
