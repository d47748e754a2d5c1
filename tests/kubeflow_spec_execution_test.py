"""The compiled spec executes end to end, twice, in the Kubeflow image, as the KFP v2 backend would.

`mnist-tfx kubeflow compile` writes pipeline.yaml; tests/kfp_v2_driver.py (a stand-in for the
backend, not a cluster) runs every task's own command from it on a real MNIST slice, each in a
fresh working container of the Kubeflow image (kubeflow/Dockerfile built with buildah on a stand-in
of python:3.10-slim, without edgetpu_compiler: tests/images.py), as a pod of the image: its working
directory outside the checkout, given nothing from this machine but the pipeline root and the data,
mounted at the same paths (the spec is compiled with --paths-mounted-in-pods). Run 1 passes inputs
as compiled (Vertex AI), run 2 as the open-source launcher does (empty instanceSchema, `system.*`
titles): the second run must find the first run's blessed model through the spec's own resolver
queries and compare against it.
"""

import json
import os

import pytest

from components.pusher import constants as pusher_constants
from core import evaluation_metrics
from core import int8_tflite
from core import push_manifest
from mnist_tfx import cli
from tests import images
from tests import kfp_v2_driver

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # Two pipeline runs, 16 containers.

BLESSING_RESOLVER = "latest_blessed_model_resolver-model-blessing-resolver"
MODEL_RESOLVER = "latest_blessed_model_resolver-model-resolver"
CONTAINER_TASKS = ("MnistExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                   "AnomaliesGate", "Trainer", "Int8Evaluator", "EdgeTpuPusher")


@pytest.fixture(scope="module")
def two_runs(kubeflow_image, mnist_slice_dir, tmp_path_factory):
  root = str(tmp_path_factory.mktemp("kfp_root"))
  in_image = images.task_runner(kubeflow_image, images.RunOptions(
      volumes={root: root, mnist_slice_dir: f"{mnist_slice_dir}:ro"}))

  def compile_spec(seed: int) -> dict:
    spec_file = str(tmp_path_factory.mktemp("spec") / "pipeline.yaml")
    assert cli.main([
        "kubeflow", "compile", "--output", spec_file, "--image", "stand-in/not-pulled:test",
        "--pipeline-root", f"{root}/pipeline_root", "--data-dir", mnist_slice_dir,
        "--paths-mounted-in-pods", "--beam-arg=--direct_running_mode=in_memory",
        # One small epoch; bless from 0.5 and whatever the baseline did, so both runs push.
        "--epochs", "1", "--train-config", "batch_size=16", "--train-config", "max_shift=0",
        "--train-config", f"seed={seed}", "--min-int8-accuracy", "0.5",
        "--max-quantization-drop", "0.5", "--baseline-tolerance", "1.0"]) == 0
    return kfp_v2_driver.read_pipeline_spec(spec_file)

  driver = kfp_v2_driver.PipelineSpecRunner(
      compile_spec(seed=0), pipeline_root=f"{root}/pipeline_root", work_dir=f"{root}/pods",
      run_task=in_image)
  first = driver.run("run-1", kfp_v2_driver.Launcher.VERTEX)
  # Run 2 is the same pipeline resubmitted with another seed: a new model, which the evaluator
  # must compare with run 1's blessed one (an identical model would be recognised as the same
  # bytes and not judged against itself, nor pushed again).
  driver.spec = compile_spec(seed=1)
  second = driver.run("run-2", kfp_v2_driver.Launcher.OPEN_SOURCE)
  for name, runs in (("run-1 (Vertex AI inputs)", first),
                     ("run-2 (open-source launcher inputs)", second)):
    print(f"{name}: " + ", ".join(f"{t} {r.seconds:.0f}s" for t, r in runs.items()))
  return first, second


def only(task_run, key):
  (artifact,) = task_run.outputs[key]
  return artifact


def test_every_task_ran_and_wrote_its_artifacts_where_the_driver_put_them(two_runs):
  for runs in two_runs:
    for name in CONTAINER_TASKS:
      for artifacts in runs[name].outputs.values():
        (artifact,) = artifacts
        assert artifact.uri.endswith(os.path.join(name, artifact.name.rsplit(".", 1)[1]))
        assert os.path.isdir(artifact.uri), artifact.uri
    examples = only(runs["MnistExampleGen"], "examples")
    assert json.loads(examples.metadata["split_names"]) == ["train", "eval"]
    for split in ("train", "eval"):
      assert os.listdir(os.path.join(examples.uri, f"Split-{split}"))
    assert os.listdir(os.path.join(only(runs["StatisticsGen"], "statistics").uri, "Split-train"))
    assert os.listdir(only(runs["ExampleValidator"], "anomalies").uri)
    assert os.path.isfile(os.path.join(only(runs["ImportSchemaGen"], "schema").uri,
                                       "schema.pbtxt"))
    assert os.path.isdir(os.path.join(only(runs["Trainer"], "model").uri, "Format-Serving"))
    assert os.path.isfile(os.path.join(only(runs["Int8Evaluator"], "evaluation").uri,
                                       evaluation_metrics.FILE_NAME))
    blessing = only(runs["Int8Evaluator"], "blessing")
    assert blessing.metadata["blessed"] == 1
    # The model resolver matches on this: the runtime name of the model that was judged.
    assert blessing.metadata["current_model_id"] == only(runs["Trainer"], "model").name
    assert only(runs["EdgeTpuPusher"], "pushed_model").metadata[pusher_constants.PUSHED_KEY] == 1


def test_first_run_has_no_baseline_and_second_compares_against_the_first_blessed_model(two_runs):
  first, second = two_runs
  assert first[BLESSING_RESOLVER].outputs["model_blessing"] == []
  assert first[MODEL_RESOLVER].outputs["model"] == []
  assert "baseline_model" not in first["Int8Evaluator"].inputs or not (
      first["Int8Evaluator"].inputs["baseline_model"])

  assert second[BLESSING_RESOLVER].outputs["model_blessing"] == [
      only(first["Int8Evaluator"], "blessing")]
  first_model = only(first["Trainer"], "model")
  assert second[MODEL_RESOLVER].outputs["model"] == [first_model]
  (baseline,) = second["Int8Evaluator"].inputs["baseline_model"]
  assert baseline.uri == first_model.uri
  with open(os.path.join(only(second["Int8Evaluator"], "evaluation").uri,
                         evaluation_metrics.FILE_NAME)) as f:
    metrics = json.load(f)
  assert metrics["baseline"] is not None


def test_second_run_got_its_inputs_as_the_open_source_launcher_passes_them(two_runs):
  first, second = two_runs
  vertex_inputs = first["Int8Evaluator"].executor_input["inputs"]["artifacts"]
  assert "title: tfx.Model" in vertex_inputs["model"]["artifacts"][0]["type"]["instanceSchema"]
  inputs = second["Int8Evaluator"].executor_input["inputs"]["artifacts"]
  assert inputs["model"]["artifacts"][0]["type"] == {"instanceSchema": ""}
  assert inputs["examples"]["artifacts"][0]["type"] == {"instanceSchema": ""}
  assert inputs["baseline_model"]["artifacts"][0]["type"] == {"schemaTitle": "system.Model"}
  pusher_inputs = second["EdgeTpuPusher"].executor_input["inputs"]["artifacts"]
  assert pusher_inputs["model_blessing"]["artifacts"][0]["type"] == {"instanceSchema": ""}


def test_pushed_model_is_the_shared_int8_conversion_of_the_trained_model(two_runs):
  for runs in two_runs:
    pushed = only(runs["EdgeTpuPusher"], "pushed_model")
    version_dir = pushed.metadata[pusher_constants.PUSHED_DESTINATION_KEY]
    with open(os.path.join(version_dir, push_manifest.MODEL_FILE), "rb") as f:
      pushed_bytes = f.read()
    model_dir = os.path.join(only(runs["Trainer"], "model").uri, "Format-Serving")
    assert pushed_bytes == int8_tflite.convert_to_int8_tflite(model_dir)
  versions = [only(runs["EdgeTpuPusher"], "pushed_model").metadata[
      pusher_constants.PUSHED_DESTINATION_KEY] for runs in two_runs]
  assert [os.path.basename(v) for v in versions] == ["1", "2"]
