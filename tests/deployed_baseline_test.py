"""Int8Evaluator's baseline is what EdgeTpuPusher deployed: the newest verified version.

The versions are published by the real pusher (tests/pusher_runs.py) from the trainer's slice
models; the evaluator's executor then judges candidates against them as an orchestrator would run
it. Tampered versions are made from a real one by changing one file.
"""

import json
import os
import shutil

import pytest
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from components.evaluator import constants
from components.evaluator import executor
from core import contract
from core import hashing
from core import int8_tflite
from core import push_manifest
from tests import pusher_runs

pytestmark = pytest.mark.integration  # Trains models, runs the evaluator's Beam pipeline.

# The slice models: thresholds for them, not for MNIST. Only the baseline check can then fail.
SLICE_PARAMS = {constants.MIN_INT8_ACCURACY_KEY: 0.0, constants.MAX_QUANTIZATION_DROP_KEY: 1.0,
                constants.BASELINE_TOLERANCE_KEY: 0.002}


def as_model_uri(saved_model_dir: str, uri: str) -> str:
  shutil.copytree(saved_model_dir, path_utils.serving_model_dir(uri))
  return uri


@pytest.fixture(scope="module")
def models(trained_model_dir, untrained_model_dir, tmp_path_factory):
  """{name: Model artifact uri} of the trained and the untrained slice model."""
  root = tmp_path_factory.mktemp("models")
  return {"trained": as_model_uri(trained_model_dir, str(root / "trained")),
          "untrained": as_model_uri(untrained_model_dir, str(root / "untrained"))}


def deploy(tmp_path, model_uri: str, destination: str) -> str:
  """Pushes the model as the pipeline would after a blessing; returns the version's directory."""
  content = int8_tflite.convert_to_int8_tflite(path_utils.serving_model_path(model_uri))
  blessing = pusher_runs.make_blessing(str(tmp_path / "blessing"), True,
                                       hashing.sha256_bytes(content), "blessed for the test")
  pushed = pusher_runs.run_pusher(tmp_path, model_uri, blessing, destination)
  return pushed.get_string_custom_property("pushed_destination")


def evaluate(tmp_path, examples_dir: str, model_uri: str, destination: str):
  """Runs the evaluator's executor; returns (metrics.json as a dict, the blessing, evaluation)."""
  examples = standard_artifacts.Examples()
  examples.uri = examples_dir
  examples.split_names = artifact_utils.encode_split_names(
      [contract.TRAIN_SPLIT, contract.EVAL_SPLIT])
  model = standard_artifacts.Model()
  model.uri, model.id = model_uri, 11
  evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
  evaluation.uri, blessing.uri = str(tmp_path / "evaluation"), str(tmp_path / "blessing_out")
  exec_properties = {**SLICE_PARAMS, constants.EVAL_SPLIT_KEY: contract.EVAL_SPLIT,
                     constants.PUSH_DESTINATION_KEY: destination}
  context = executor.Executor.Context(tmp_dir=str(tmp_path / "tmp"), unique_id="1")
  executor.Executor(context).Do(
      {standard_component_specs.EXAMPLES_KEY: [examples],
       standard_component_specs.MODEL_KEY: [model]},
      {standard_component_specs.EVALUATION_KEY: [evaluation],
       standard_component_specs.BLESSING_KEY: [blessing]}, exec_properties)
  with open(os.path.join(evaluation.uri, "metrics.json")) as f:
    return json.load(f), blessing, evaluation


def snapshot(directory: str):
  """{relative path: sha256} of every file under `directory`."""
  found = {}
  for root, _, names in os.walk(directory):
    for name in names:
      with open(os.path.join(root, name), "rb") as f:
        found[os.path.relpath(os.path.join(root, name), directory)] = hashing.sha256_stream(f)
  return found


@pytest.fixture(scope="module")
def deployed_trained(models, tmp_path_factory):
  """A destination whose version 1 is the trained model, pushed by the pusher."""
  destination = str(tmp_path_factory.mktemp("deployed") / "pushed_models")
  deploy(tmp_path_factory.mktemp("push"), models["trained"], destination)
  return destination


def test_candidate_is_judged_against_the_deployed_versions_own_bytes(
    tmp_path, examples_dir, models, deployed_trained):
  version_dir = os.path.join(deployed_trained, "1")
  with open(os.path.join(version_dir, push_manifest.MODEL_FILE), "rb") as f:
    deployed_bytes = f.read()
  before = snapshot(deployed_trained)

  metrics, blessing, evaluation = evaluate(tmp_path / "untrained", examples_dir,
                                           models["untrained"], deployed_trained)
  # The deployed bytes, run with the candidate's runtime on the same examples, give the
  # accuracy the trained model gets when it is the candidate.
  alone, _, _ = evaluate(tmp_path / "trained", examples_dir, models["trained"],
                         str(tmp_path / "empty"))
  baseline = metrics["baseline"]
  assert baseline["deployed"] == {
      "destination": deployed_trained, "version": 1,
      "tflite_sha256": hashing.sha256_bytes(deployed_bytes),
      "source_model_uri": models["trained"]}
  assert baseline["int8"]["tflite_sha256"] == alone["int8"]["tflite_sha256"]
  assert baseline["int8"]["accuracy"] == alone["int8"]["accuracy"]
  with open(os.path.join(evaluation.uri, constants.BASELINE_TFLITE_FILE), "rb") as f:
    assert f.read() == deployed_bytes
  assert metrics["blessed"] is False
  assert (f"FAILED int8 accuracy {metrics['int8']['accuracy']:.4f} < baseline (deployed "
          f"version 1) int8 accuracy {alone['int8']['accuracy']:.4f}") in metrics["reason"]
  assert blessing.get_int_custom_property(constants.BASELINE_VERSION_PROPERTY) == 1
  assert blessing.get_string_custom_property("baseline_model") == version_dir
  assert snapshot(deployed_trained) == before  # The evaluator only reads the destination.


def test_the_deployed_candidate_is_not_compared_with_itself(tmp_path, examples_dir, models,
                                                            deployed_trained):
  metrics, blessing, evaluation = evaluate(tmp_path, examples_dir, models["trained"],
                                           deployed_trained)
  expected = "baseline skipped: identical to deployed version 1 (same int8 sha256)"
  assert metrics["baseline"] is None
  assert metrics["baseline_skipped"] == expected
  assert metrics["blessed"] and metrics["reason"].endswith(expected)
  assert constants.BASELINE_TFLITE_FILE not in os.listdir(evaluation.uri)
  assert not blessing.has_custom_property(constants.BASELINE_VERSION_PROPERTY)


def tamper(destination: str, version: int, how: str) -> None:
  """Copies version 1 to `version` (its model.json saying so) and breaks one thing in the copy."""
  version_dir = os.path.join(destination, str(version))
  shutil.copytree(os.path.join(destination, "1"), version_dir)
  manifest_path = os.path.join(version_dir, push_manifest.FILE_NAME)
  with open(manifest_path) as f:
    manifest = json.load(f)
  with open(manifest_path, "w") as f:
    json.dump({**manifest, "version": version}, f)
  if how == "model_bytes":
    with open(os.path.join(version_dir, push_manifest.MODEL_FILE), "r+b") as f:
      f.seek(100)
      f.write(b"\xff\xfe")
  elif how == "manifest_not_json":
    with open(manifest_path, "w") as f:
      f.write("{ not json")
  elif how == "other_version":
    with open(manifest_path) as f:
      manifest = json.load(f)
    manifest["version"] = 9
    with open(manifest_path, "w") as f:
      json.dump(manifest, f)
  elif how == "no_model":
    os.remove(os.path.join(version_dir, push_manifest.MODEL_FILE))


def test_versions_that_fail_verification_are_passed_over_for_an_older_one(
    tmp_path, examples_dir, models, deployed_trained, caplog):
  destination = str(tmp_path / "pushed_models")
  shutil.copytree(deployed_trained, destination)
  for version, how in ((2, "model_bytes"), (3, "manifest_not_json"), (4, "other_version"),
                       (5, "no_model")):
    tamper(destination, version, how)
  os.makedirs(os.path.join(destination, ".incomplete-push-abc"))  # Never a version.

  metrics, _, _ = evaluate(tmp_path / "eval", examples_dir, models["untrained"], destination)
  assert metrics["baseline"]["deployed"]["version"] == 1
  for version in (5, 4, 3, 2):
    assert f"passing over {os.path.join(destination, str(version))}: " in caplog.text, version

  shutil.rmtree(os.path.join(destination, "1"))
  metrics, _, _ = evaluate(tmp_path / "none", examples_dir, models["untrained"], destination)
  assert metrics["baseline"] is None and metrics["baseline_skipped"] is None
  note = metrics["reason"][metrics["reason"].index("no baseline"):]
  assert note.startswith(f"no baseline (no verified version in {destination}: version 5: "
                         "model.tflite is missing; version 4: its model.json describes version 9;"
                         " version 3: ")
  assert "version 2: model.tflite has sha256" in note
