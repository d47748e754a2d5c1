"""The pipeline compiles to a Kubeflow Pipelines v2 job spec with the same wiring as locally."""

import json

import pytest

from mnist_tfx import cli
from mnist_tfx.kubeflow import runner

pytestmark = pytest.mark.integration  # Runs TFX pipelines or trains models.

IMAGE = "registry.example/mnist-edgetpu-tfx:test"


def test_compiles_every_component_with_the_data_gate_before_training(tmp_path):
  spec = runner.compile_pipeline(
      str(tmp_path), image=IMAGE, pipeline_root="gs://bucket/root", data_dir="gs://bucket/mnist",
      beam_pipeline_args=["--runner=DataflowRunner"], train_config={"epochs": 3})
  tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
  assert set(tasks) == {
      "MnistExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "AnomaliesGate",
      "Trainer", "Int8Evaluator", "EdgeTpuPusher",
      # KFP v2 splits the latest-blessed-model resolver into a blessing and a model lookup.
      "latest_blessed_model_resolver-model-blessing-resolver",
      "latest_blessed_model_resolver-model-resolver"}
  # Nothing is trained before the gate passed.
  assert "AnomaliesGate" in tasks["Trainer"]["dependentTasks"]
  executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
  images = {e["container"]["image"] for e in executors.values() if "container" in e}
  assert images == {IMAGE}
  assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
  serialized = str(executors)
  for executor_class in ("components.mnist_example_gen.executor.Executor",
                         "components.anomalies_gate.executor.Executor",
                         "components.evaluator.executor.Executor",
                         "components.pusher.executor.Executor"):
    assert executor_class in serialized
  assert "--runner=DataflowRunner" in serialized


def test_mnist_tfx_kubeflow_writes_the_job_spec(tmp_path, capsys):
  assert cli.main(["kubeflow", "--image", IMAGE, "--pipeline-root", "gs://bucket/root",
                   "--data-dir", "gs://bucket/mnist", "--output-dir", str(tmp_path),
                   "--epochs", "4", "--min-int8-accuracy", "0.985"]) == 0
  spec_path = tmp_path / runner.SPEC_FILE_NAME
  assert str(spec_path) in capsys.readouterr().out
  tasks = json.loads(spec_path.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]

  def parameter(task: str, name: str):
    return tasks[task]["inputs"]["parameters"][name]["runtimeValue"]["constantValue"]

  # The same options as `mnist-tfx run` reach the components.
  assert json.loads(parameter("Trainer", "custom_config")["stringValue"])["epochs"] == 4
  assert parameter("Int8Evaluator", "min_int8_accuracy")["doubleValue"] == 0.985
