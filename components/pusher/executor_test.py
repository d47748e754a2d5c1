"""EdgeTpuPusher executor on the trainer's slice model, with stand-in compilers on PATH.

Blessings are standard ModelBlessing artifacts with the properties Int8Evaluator sets (the sha256
computed with the shared int8 conversion); one test runs the real Int8Evaluator executor and checks
that the pushed model reproduces its int8 accuracy in a process without TensorFlow.
"""

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from components.evaluator import constants as evaluator_constants
from components.evaluator import executor as evaluator_executor
from components.pusher import constants
from components.pusher import edgetpu_compiler
from components.pusher import edgetpu_package
from components.pusher import executor
from components.pusher import versioned_push
from components.pusher.testdata import standins
from core import contract
from core import evaluation_metrics
from core import int8_tflite
from core import push_manifest
from tests import fixtures_data
from tests import mnist_slices
from tests import push_processes
from tests.pusher_runs import make_blessing
from tests.pusher_runs import run_pusher

REPO_ROOT = str(mnist_slices.REPO_ROOT)


@pytest.fixture(scope="module")
def model_uri(trained_model_dir, tmp_path_factory) -> str:
  """The slice model laid out as a Trainer's Model artifact (SavedModel in Format-Serving/)."""
  uri = str(tmp_path_factory.mktemp("model"))
  shutil.copytree(trained_model_dir, path_utils.serving_model_dir(uri))
  return uri


@pytest.fixture(scope="module")
def int8_model(model_uri) -> bytes:
  """The slice model's full-int8 conversion with the default (uint8) input and output."""
  return int8_tflite.convert_to_int8_tflite(path_utils.serving_model_path(model_uri))


@pytest.fixture(scope="module")
def int8_io_model(model_uri) -> bytes:
  """The same with int8 input and output."""
  return int8_tflite.convert_to_int8_tflite(path_utils.serving_model_path(model_uri),
                                            io_dtype=contract.INT8_IO)


@pytest.fixture
def no_compiler_on_path(monkeypatch):
  """PATH without any edgetpu_compiler (the real one is not installed here either)."""
  kept = [d for d in os.environ["PATH"].split(os.pathsep)
          if d and not os.path.exists(os.path.join(d, edgetpu_compiler.COMPILER_NAME))]
  monkeypatch.setenv("PATH", os.pathsep.join(kept))
  assert edgetpu_compiler.find_compiler() is None


@pytest.fixture
def standin_on_path(tmp_path, monkeypatch, no_compiler_on_path):
  """Returns a function that puts a stand-in compiler with the given behaviour first on PATH."""
  del no_compiler_on_path

  def install(behaviour: str) -> str:
    bin_dir = str(tmp_path / f"bin_{behaviour}")
    path = standins.write_standin(bin_dir, behaviour)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return path
  return install


def blessed(tmp_path, int8_model):
  return make_blessing(str(tmp_path / "blessing"), True, hashlib.sha256(int8_model).hexdigest(),
                       "blessed: int8 accuracy 0.9 >= 0.85")


def read_file(version_dir: str, name: str) -> bytes:
  with open(os.path.join(version_dir, name), "rb") as f:
    return f.read()


def read_manifest(version_dir: str):
  """model.json as written, after checking it against core.push_manifest's schema."""
  with open(os.path.join(version_dir, push_manifest.FILE_NAME), "rb") as f:
    content = f.read()
  push_manifest.from_json(content)
  return json.loads(content)


def assert_nothing_pushed(destination: str):
  assert versioned_push.list_versions(destination) == []
  assert versioned_push.list_incomplete(destination) == []


def assert_manifest_hashes_match(version_dir: str):
  manifest = read_manifest(version_dir)
  assert sorted(manifest["files"]) == sorted(set(os.listdir(version_dir)) -
                                             {push_manifest.FILE_NAME})
  for name, entry in manifest["files"].items():
    with open(os.path.join(version_dir, name), "rb") as f:
      content = f.read()
    assert entry == {"sha256": hashlib.sha256(content).hexdigest(), "size_bytes": len(content)}


def test_unblessed_model_is_not_pushed(tmp_path, model_uri, int8_model, standin_on_path):
  standin_on_path("success")
  reason = "not blessed: FAILED int8 accuracy 0.4000 < 0.8500"
  blessing = make_blessing(str(tmp_path / "blessing"), False,
                           hashlib.sha256(int8_model).hexdigest(), reason)
  destination = str(tmp_path / "dest")
  pushed_model = run_pusher(tmp_path, model_uri, blessing, destination)
  assert pushed_model.get_int_custom_property(constants.PUSHED_KEY) == 0
  assert pushed_model.get_string_custom_property(constants.REASON_KEY) == reason
  assert not os.path.exists(destination)
  assert os.listdir(pushed_model.uri) == []


def test_push_without_compiler_ships_the_cpu_model_and_says_so(tmp_path, model_uri, int8_model,
                                                              no_compiler_on_path, caplog):
  del no_compiler_on_path
  destination = str(tmp_path / "dest")
  with caplog.at_level(logging.WARNING):
    pushed_model = run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination)
  assert edgetpu_compiler.NOT_INSTALLED_MESSAGE in caplog.text
  version_dir = os.path.join(destination, "1")
  assert sorted(os.listdir(version_dir)) == [push_manifest.LABELS_FILE, push_manifest.FILE_NAME,
                                             push_manifest.MODEL_FILE]
  assert read_file(version_dir, push_manifest.MODEL_FILE) == int8_model
  # Coral's label file: one label per line, line i naming output i.
  assert read_file(version_dir, push_manifest.LABELS_FILE) == b"0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"
  assert_manifest_hashes_match(version_dir)
  manifest = read_manifest(version_dir)
  assert manifest["version"] == 1
  assert manifest["source_model_uri"] == model_uri
  assert manifest["labels"] == [str(d) for d in range(10)]
  assert manifest["edgetpu"] == {"compiled": False,
                                 "status": edgetpu_compiler.NOT_INSTALLED_MESSAGE,
                                 "compiler": None}
  assert manifest["edgetpu_compatibility"]["fully_mapped"]
  # uint8 I/O by default: the device feeds the raw pixel bytes (scale 1/255, zero point 0).
  assert manifest["input"]["shape"] == [1, 28, 28, 1] and manifest["input"]["dtype"] == "uint8"
  assert manifest["input"]["scale"] == pytest.approx(1 / contract.MAX_PIXEL_VALUE)
  assert manifest["input"]["zero_point"] == 0
  assert manifest["output"]["dtype"] == "uint8" and manifest["output"]["shape"] == [1, 10]
  assert manifest["evaluation"] is None
  properties = {
      constants.PUSHED_KEY: pushed_model.get_int_custom_property(constants.PUSHED_KEY),
      constants.PUSHED_VERSION_KEY:
          pushed_model.get_string_custom_property(constants.PUSHED_VERSION_KEY),
      constants.PUSHED_DESTINATION_KEY:
          pushed_model.get_string_custom_property(constants.PUSHED_DESTINATION_KEY),
      constants.EDGETPU_COMPILED_KEY:
          pushed_model.get_int_custom_property(constants.EDGETPU_COMPILED_KEY),
      constants.EDGETPU_STATUS_KEY:
          pushed_model.get_string_custom_property(constants.EDGETPU_STATUS_KEY),
      constants.IO_DTYPE_KEY: pushed_model.get_string_custom_property(constants.IO_DTYPE_KEY),
  }
  assert properties == {constants.PUSHED_KEY: 1, constants.PUSHED_VERSION_KEY: "1",
                        constants.PUSHED_DESTINATION_KEY: version_dir,
                        constants.EDGETPU_COMPILED_KEY: 0,
                        constants.EDGETPU_STATUS_KEY: edgetpu_compiler.NOT_INSTALLED_MESSAGE,
                        constants.IO_DTYPE_KEY: "uint8"}
  assert sorted(os.listdir(pushed_model.uri)) == sorted(os.listdir(version_dir))
  assert pushed_model.get_int_custom_property(constants.NEW_VERSION_PUBLISHED_KEY) == 1
  # The same bytes blessed again (a re-run with unchanged inputs): no duplicate version; the
  # push records version 1, which holds them, and says so.
  again = run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination)
  assert versioned_push.list_versions(destination) == [1]
  assert versioned_push.list_incomplete(destination) == []
  assert again.get_int_custom_property(constants.PUSHED_KEY) == 1
  assert again.get_string_custom_property(constants.PUSHED_VERSION_KEY) == "1"
  assert again.get_string_custom_property(constants.PUSHED_DESTINATION_KEY) == version_dir
  assert again.get_int_custom_property(constants.NEW_VERSION_PUBLISHED_KEY) == 0
  assert again.get_string_custom_property(constants.REASON_KEY) == (
      "nothing new pushed: identical to version 1")
  assert read_manifest(version_dir) == manifest  # Version 1 untouched.


def test_require_edgetpu_without_compiler_fails(tmp_path, model_uri, int8_model,
                                                no_compiler_on_path):
  del no_compiler_on_path
  destination = str(tmp_path / "dest")
  with pytest.raises(executor.PushError, match="edgetpu_compiler not installed"):
    run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination,
               **{constants.REQUIRE_EDGETPU_KEY: True})
  assert not os.path.exists(destination)


@pytest.mark.parametrize("io_dtype, min_runtime_version", [
    (contract.UINT8_IO, None), (contract.INT8_IO, 12)])
def test_push_with_standin_compiler(tmp_path, model_uri, int8_model, int8_io_model,
                                    standin_on_path, io_dtype, min_runtime_version):
  compiler = standin_on_path("success")
  model_content = {contract.UINT8_IO: int8_model, contract.INT8_IO: int8_io_model}[io_dtype]
  params = {constants.REQUIRE_EDGETPU_KEY: True, constants.IO_DTYPE_KEY: io_dtype}
  if min_runtime_version is not None:
    params[constants.MIN_RUNTIME_VERSION_KEY] = min_runtime_version
  expected_runtime = min_runtime_version or constants.DEFAULT_MIN_RUNTIME_VERSION
  destination = str(tmp_path / "dest")
  pushed_model = run_pusher(tmp_path, model_uri, blessed(tmp_path, model_content), destination,
                            **params)
  version_dir = os.path.join(destination, "1")
  assert sorted(os.listdir(version_dir)) == sorted([
      push_manifest.FILE_NAME, push_manifest.MODEL_FILE, push_manifest.LABELS_FILE,
      push_manifest.EDGETPU_MODEL_FILE, push_manifest.COMPILER_LOG_FILE])
  assert_manifest_hashes_match(version_dir)
  assert read_file(version_dir, push_manifest.MODEL_FILE) == model_content
  manifest = read_manifest(version_dir)
  assert manifest["input"]["dtype"] == manifest["output"]["dtype"] == io_dtype
  edgetpu = manifest["edgetpu"]
  assert edgetpu["compiled"] is True
  # Everything the stand-in produced is recorded as the stand-in's.
  assert edgetpu["compiler"]["compiler_path"] == compiler
  assert "test stand-in" in edgetpu["compiler"]["compiler_version"]
  command = edgetpu["compiler"]["command"]
  assert command[command.index("-m") + 1] == str(expected_runtime)
  # The version the compiled model needs is read from the model the compiler wrote (its package).
  assert edgetpu["compiler"]["requested_min_runtime_version"] == expected_runtime
  assert edgetpu["compiler"]["required_runtime_version"] == expected_runtime
  assert edgetpu_package.required_runtime_version(
      read_file(version_dir, push_manifest.EDGETPU_MODEL_FILE)) == expected_runtime
  assert (edgetpu["compiler"]["on_chip_memory_used_bytes"], edgetpu["compiler"][
      "off_chip_memory_used_bytes"], edgetpu["compiler"]["edgetpu_subgraphs"]) == (
          pytest.approx(len(model_content), rel=0.01), 0, 1)
  assert "test stand-in" in read_file(version_dir, push_manifest.COMPILER_LOG_FILE).decode()
  assert (edgetpu["compiler"]["operations_on_edgetpu"] ==
          manifest["edgetpu_compatibility"]["operations_total"])
  assert pushed_model.get_int_custom_property(constants.EDGETPU_COMPILED_KEY) == 1
  status = pushed_model.get_string_custom_property(constants.EDGETPU_STATUS_KEY)
  assert status == edgetpu["status"]
  operations = manifest["edgetpu_compatibility"]["operations_total"]
  assert status.startswith(f"compiled: {operations} of {operations} operations run on the Edge "
                           f"TPU, needs Edge TPU runtime {expected_runtime} or later, ")
  assert "KiB on-chip, 0 B off-chip parameters, 1 Edge TPU subgraph (" in status
  assert pushed_model.get_string_custom_property(constants.IO_DTYPE_KEY) == io_dtype


@pytest.mark.parametrize("behaviour, params, error, match", [
    ("fail", {}, edgetpu_compiler.EdgeTpuCompilerError, "exited with status 1"),
    ("hang", {constants.COMPILER_TIMEOUT_SECONDS_KEY: 3}, edgetpu_compiler.EdgeTpuCompilerError,
     "did not finish within 3 s"),
    ("partial", {}, executor.PushError, "did not map every operation"),
    ("offchip", {}, executor.PushError, r"would run slowly: .* KiB of parameters streamed from "
     "off-chip memory"),
    ("subgraphs", {constants.REQUIRE_FULL_EDGETPU_MAPPING_KEY: False}, executor.PushError,
     "would run slowly: 2 Edge TPU subgraphs"),
])
def test_compiler_problems_fail_the_push(tmp_path, model_uri, int8_model, standin_on_path,
                                         behaviour, params, error, match):
  standin_on_path(behaviour)
  destination = str(tmp_path / "dest")
  with pytest.raises(error, match=match):
    run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination, **params)
  assert_nothing_pushed(destination)


def test_partial_mapping_can_be_allowed(tmp_path, model_uri, int8_model, standin_on_path):
  standin_on_path("partial")
  destination = str(tmp_path / "dest")
  pushed_model = run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination,
                            **{constants.REQUIRE_FULL_EDGETPU_MAPPING_KEY: False})
  compiler = read_manifest(os.path.join(destination, "1"))["edgetpu"]["compiler"]
  assert compiler["operations_on_cpu"] > 0 and not compiler["fully_mapped"]
  assert pushed_model.get_int_custom_property(constants.PUSHED_KEY) == 1


@pytest.mark.parametrize("behaviour, off_chip, subgraphs", [("offchip", True, 1),
                                                             ("subgraphs", False, 2)])
def test_slow_compilations_can_be_allowed(tmp_path, model_uri, int8_model, standin_on_path,
                                          behaviour, off_chip, subgraphs):
  standin_on_path(behaviour)
  destination = str(tmp_path / "dest")
  run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination,
             **{constants.REQUIRE_FULL_EDGETPU_MAPPING_KEY: False,
                constants.REQUIRE_EDGETPU_ON_CHIP_KEY: False})
  compiler = read_manifest(os.path.join(destination, "1"))["edgetpu"]["compiler"]
  assert bool(compiler["off_chip_memory_used_bytes"]) is off_chip
  assert compiler["edgetpu_subgraphs"] == subgraphs


@pytest.mark.parametrize("io_dtype, params, match", [
    (contract.INT8_IO, {constants.MIN_RUNTIME_VERSION_KEY: 11},
     "min_runtime_version=11: int8 model inputs and outputs need Edge TPU runtime 12 or later"),
    (contract.UINT8_IO, {constants.MIN_RUNTIME_VERSION_KEY: 9},
     "min_runtime_version=9: Edge TPU runtime version 9 is below 10"),
    (contract.UINT8_IO, {constants.COMPILER_FLAGS_KEY: json.dumps(["--min_runtime_version=12"])},
     "sets the minimum Edge TPU runtime version; use the min_runtime_version setting"),
])
def test_runtime_versions_the_model_cannot_have_are_refused(
    tmp_path, model_uri, int8_model, int8_io_model, standin_on_path, io_dtype, params, match):
  standin_on_path("success")
  model_content = {contract.UINT8_IO: int8_model, contract.INT8_IO: int8_io_model}[io_dtype]
  destination = str(tmp_path / "dest")
  with pytest.raises((executor.PushError, ValueError), match=match):
    run_pusher(tmp_path, model_uri, blessed(tmp_path, model_content), destination,
               **{constants.IO_DTYPE_KEY: io_dtype, **params})
  assert not os.path.exists(destination)


def test_a_uint8_runtime_below_12_compiles(tmp_path, model_uri, int8_model, standin_on_path):
  standin_on_path("success")
  destination = str(tmp_path / "dest")
  run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination,
             **{constants.MIN_RUNTIME_VERSION_KEY: 10})
  compiler = read_manifest(os.path.join(destination, "1"))["edgetpu"]["compiler"]
  assert compiler["required_runtime_version"] == compiler["requested_min_runtime_version"] == 10


def test_an_io_dtype_other_than_the_blessed_ones_is_refused(tmp_path, model_uri, int8_model,
                                                            no_compiler_on_path):
  del no_compiler_on_path
  destination = str(tmp_path / "dest")
  with pytest.raises(executor.PushError, match="with int8 input and output has sha256 .* refusing "
                     "to push bytes that were not evaluated .* the same io_dtype"):
    run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination,
               **{constants.IO_DTYPE_KEY: contract.INT8_IO})
  assert not os.path.exists(destination)


def test_bytes_not_blessed_are_refused(tmp_path, model_uri, int8_model, no_compiler_on_path):
  del no_compiler_on_path
  other_sha = hashlib.sha256(int8_model + b"\0").hexdigest()
  blessing = make_blessing(str(tmp_path / "blessing"), True, other_sha, "blessed")
  destination = str(tmp_path / "dest")
  with pytest.raises(executor.PushError, match="refusing to push bytes that were not evaluated"):
    run_pusher(tmp_path, model_uri, blessing, destination)
  assert not os.path.exists(destination)


def test_interrupted_push_leaves_no_version_and_the_next_push_succeeds(
    tmp_path, model_uri, int8_model, no_compiler_on_path):
  del no_compiler_on_path
  destination = str(tmp_path / "dest")
  model_file = tmp_path / "model.tflite"
  model_file.write_bytes(int8_model)
  process = push_processes.push_process(destination, str(model_file), "hang")
  try:
    line = process.stdout.readline()  # Printed once every file is written, before the rename.
    assert line.startswith("RENAMING"), line
    [temp_dir] = versioned_push.list_incomplete(destination)
    assert sorted(os.listdir(temp_dir)) == ["model.json", "model.tflite", "writer.txt"]
    os.kill(process.pid, signal.SIGKILL)
  finally:
    process.kill()
    process.wait(timeout=60)
  assert process.returncode == -signal.SIGKILL
  assert versioned_push.list_versions(destination) == []  # No visible partial version.

  pushed_model = run_pusher(tmp_path, model_uri, blessed(tmp_path, int8_model), destination)
  assert pushed_model.get_string_custom_property(constants.PUSHED_VERSION_KEY) == "1"
  assert versioned_push.list_versions(destination) == [1]
  assert_manifest_hashes_match(os.path.join(destination, "1"))
  assert versioned_push.list_incomplete(destination) == [temp_dir]  # Left alone, never a version.


_TF_FREE_ACCURACY = """
import json, sys
import numpy as np
from core import int8_runtime
model_file, data_file = sys.argv[1:3]
with open(model_file, "rb") as f:
  classifier = int8_runtime.Int8Classifier(f.read())
data = np.load(data_file)
predictions = [int(classifier.predict_pixels(image[None]).argmax()) for image in data["images"]]
assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if "tensorflow" in m)
print(json.dumps({"correct": int((np.array(predictions) == data["labels"]).sum()),
                  "count": len(predictions)}))
"""


def test_pushed_model_reproduces_the_evaluator_accuracy_without_tensorflow(
    tmp_path, model_uri, examples_dir, no_compiler_on_path):
  del no_compiler_on_path
  # The real Int8Evaluator executor blesses the model and writes its metrics.
  examples = standard_artifacts.Examples()
  examples.uri = examples_dir
  examples.split_names = artifact_utils.encode_split_names(
      [contract.TRAIN_SPLIT, contract.EVAL_SPLIT])
  model = standard_artifacts.Model()
  model.uri = model_uri
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = str(tmp_path / "evaluation")
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / "blessing")
  context = evaluator_executor.Executor.Context(tmp_dir=str(tmp_path / "eval_tmp"), unique_id="2")
  evaluator_executor.Executor(context).Do(
      {standard_component_specs.EXAMPLES_KEY: [examples],
       standard_component_specs.MODEL_KEY: [model]},
      {standard_component_specs.EVALUATION_KEY: [evaluation],
       standard_component_specs.BLESSING_KEY: [blessing]},
      {evaluator_constants.MIN_INT8_ACCURACY_KEY: 0.5,
       evaluator_constants.MAX_QUANTIZATION_DROP_KEY: 0.05,
       evaluator_constants.BASELINE_TOLERANCE_KEY: 0.002,
       evaluator_constants.EVAL_SPLIT_KEY: contract.EVAL_SPLIT})
  with open(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME)) as f:
    evaluator_metrics = json.load(f)

  destination = str(tmp_path / "dest")
  run_pusher(tmp_path, model_uri, blessing, destination, evaluation=evaluation)
  version_dir = os.path.join(destination, "1")
  assert read_manifest(version_dir)["evaluation"] == {"uri": evaluation.uri,
                                                      "metrics": evaluator_metrics}

  images, labels = mnist_slices.load_full(contract.EVAL_SPLIT)
  data_file = str(tmp_path / "eval_slice.npz")
  count = fixtures_data.SLICE_EVAL  # examples_dir's eval split: the first 500 test images.
  np.savez(data_file, images=images[:count], labels=labels[:count])
  result = subprocess.run(
      [sys.executable, "-c", _TF_FREE_ACCURACY, os.path.join(version_dir, push_manifest.MODEL_FILE),
       data_file], capture_output=True, text=True, timeout=300,
      env=dict(os.environ, PYTHONPATH=REPO_ROOT), check=False)
  assert result.returncode == 0, result.stderr
  tf_free = json.loads(result.stdout.strip().splitlines()[-1])
  assert tf_free["count"] == evaluator_metrics["num_examples"] == fixtures_data.SLICE_EVAL
  assert tf_free["correct"] == evaluator_metrics["int8"]["correct"]
