"""The pipeline on a real MNIST slice under LocalDagRunner, driven through `mnist-tfx run`.

Every run is a subprocess, as a user runs it: the tests also check what the console shows (a line
per component, the summary, one line on failure, the exit code) and the log file.
"""

import glob
import hashlib
import html
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils

from components.anomalies_gate import executor as anomalies_gate_executor
from components.example_validator import anomalies as anomalies_lib
from components.mnist_example_gen import idx
from components.pusher import constants as pusher_constants
from components.pusher import versioned_push
from components.pusher.testdata import standins
from core import contract
from core import errors
from core import evaluation_metrics
from core import paths
from core import push_manifest
from mnist_tfx import local_runner
from mnist_tfx import mlmd_queries
from pipeline import configs
from pipeline import pipeline as pipeline_def
from tests import cli_runs
from tests import data_validation
from tests import mnist_slices

pytestmark = pytest.mark.integration  # Runs TFX pipelines or trains models.

def node_executions(pipeline_root: str, node_id: str):
  """The executions of one component, oldest first."""
  store = metadata_store.MetadataStore(local_runner.metadata_config(pipeline_root))
  context = store.get_context_by_type_and_name("node", f"{configs.PIPELINE_NAME}.{node_id}")
  return sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)


def log_path_of(run: cli_runs.CliRun) -> str:
  """The log file the console named (first on stderr, unless --quiet, and after the summary)."""
  named = [line.split(":", 1)[1].strip() for line in run.lines if line.startswith("Log file:")]
  assert named and len(set(named)) == 1, run.lines
  return named[0]


def test_console_is_short_and_ends_with_the_summary_and_report(slice_run):
  """A new user's first run: a line per component, then the summary; the rest is in the log."""
  assert slice_run.returncode == 0
  lines = slice_run.lines
  assert len(lines) < 60, "\n".join(lines)
  # The summary (stdout) ends with the report; stderr holds the log's path and component lines.
  assert slice_run.stdout.splitlines()[-1] == (
      f"Run report:          {slice_run.pipeline_root}/report.html")
  log_path = log_path_of(slice_run)
  assert f"Log file:            {log_path}" in lines
  assert slice_run.stdout.startswith(f"== {configs.PIPELINE_NAME}: summary of the last run ==")
  finished = [line for line in slice_run.stderr.splitlines() if " done in " in line]
  assert [line.split()[1] for line in finished] == [
      "ImportSchemaGen", "MnistExampleGen", "StatisticsGen",
      "ExampleValidator", "AnomaliesGate", "Trainer", "Int8Evaluator", "EdgeTpuPusher"]
  examples = [line for line in finished if "MnistExampleGen" in line][0]
  assert examples.endswith("train 2000, eval 500 examples")
  assert [line for line in finished if "ExampleValidator" in line][0].endswith("no anomalies")
  assert "blessed" in [line for line in finished if "Int8Evaluator" in line][0]
  # TFX's node dumps and TensorFlow's start-up messages are in the log file, not on the console.
  output = slice_run.stdout + slice_run.stderr
  for noise in ("Component Trainer is running", "oneDNN", "cuda", "WARNING", "Traceback"):
    assert noise not in output
  with open(log_path) as f:
    log = f.read()
  assert "Component Trainer is running." in log and "Component EdgeTpuPusher is finished." in log


def test_run_registers_every_artifact_in_mlmd(slice_run, mnist_slice_dir):
  pipeline_root, printed = slice_run.pipeline_root, slice_run.stdout
  artifacts = mlmd_queries.last_run_artifacts(local_runner.metadata_config(pipeline_root),
                                              configs.PIPELINE_NAME)
  images, _ = idx.read_pair(os.path.join(mnist_slice_dir, idx.TRAIN_IMAGES + ".gz"),
                            os.path.join(mnist_slice_dir, idx.TRAIN_LABELS + ".gz"))
  eval_images, _ = idx.read_pair(os.path.join(mnist_slice_dir, idx.EVAL_IMAGES + ".gz"),
                                 os.path.join(mnist_slice_dir, idx.EVAL_LABELS + ".gz"))
  examples = artifacts["Examples"]
  assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
  assert examples.get_int_custom_property("train_num_examples") == len(images)
  assert examples.get_int_custom_property("eval_num_examples") == len(eval_images)

  statistics = artifacts["ExampleStatistics"]
  html_path = os.path.join(statistics.uri, "statistics.html")
  with open(html_path) as f:
    html = f.read()
  assert "facets-overview" in html  # TFDV's own Facets rendering.
  assert anomalies_lib.describe_anomalies(artifacts["ExampleAnomalies"]) == []

  model_dir = os.path.join(artifacts["Model"].uri, "Format-Serving")
  assert set(tf.saved_model.load(model_dir).signatures) >= {
      contract.SERVING_SIGNATURE, contract.PREDICT_IMAGES_SIGNATURE,
      contract.SINGLE_IMAGE_SIGNATURE}
  assert os.listdir(artifacts["ModelRun"].uri)

  for path in (examples.uri, html_path, artifacts["ExampleAnomalies"].uri,
               local_runner.metadata_path(pipeline_root)):
    assert path in printed


def read_metrics(evaluation) -> dict:
  with open(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME)) as f:
    return json.load(f)


def test_run_evaluates_the_int8_model_and_pushes_a_verified_version(slice_run):
  pipeline_root, printed = slice_run.pipeline_root, slice_run.stdout
  artifacts = mlmd_queries.last_run_artifacts(local_runner.metadata_config(pipeline_root),
                                              configs.PIPELINE_NAME)
  metrics = read_metrics(artifacts["ModelEvaluation"])
  assert metrics["blessed"] and metrics["baseline"] is None
  assert artifacts["ModelBlessing"].get_int_custom_property("blessed") == 1
  assert f"int8 accuracy {metrics['int8']['accuracy']:.4f}" in printed
  assert metrics["reason"] in printed

  pushed = artifacts["PushedModel"]
  assert pushed.get_int_custom_property(pusher_constants.PUSHED_KEY) == 1
  version_dir = pushed.get_string_custom_property(pusher_constants.PUSHED_DESTINATION_KEY)
  assert version_dir == os.path.join(pipeline_root, "pushed_models", "1")
  with open(os.path.join(version_dir, push_manifest.FILE_NAME)) as f:
    manifest = json.load(f)
  assert set(manifest["files"]) == set(os.listdir(version_dir)) - {push_manifest.FILE_NAME}
  for name, described in manifest["files"].items():
    with open(os.path.join(version_dir, name), "rb") as f:
      assert hashlib.sha256(f.read()).hexdigest() == described["sha256"]
  # The bytes pushed are the bytes the evaluator judged and blessed.
  assert manifest["files"]["model.tflite"]["sha256"] == metrics["int8"]["tflite_sha256"] == (
      artifacts["ModelBlessing"].get_string_custom_property("int8_tflite_sha256"))
  # No edgetpu_compiler on this machine: the summary must say so, not claim a compiled model.
  if shutil.which("edgetpu_compiler") is None:
    assert not manifest["edgetpu"]["compiled"]
    assert "edgetpu_compiler not installed" in printed


def test_int8_io_run_with_the_standin_compiler_reports_runtime_memory_and_subgraphs(
    mnist_slice_dir, tmp_path):
  """--io-dtype and --min-runtime-version reach the evaluator, the pusher and the compiler (a test
  stand-in, not a real compilation); the console, model.json and the report show what it did."""
  compiler = standins.write_standin(str(tmp_path / "bin"), "success")
  pipeline_root = str(tmp_path / "pipeline")
  run = cli_runs.run_cli(pipeline_root, mnist_slice_dir, "--io-dtype", "int8",
                         "--min-runtime-version", "12", "--edgetpu-compiler", compiler)
  assert run.returncode == 0, run.stderr
  artifacts = mlmd_queries.last_run_artifacts(local_runner.metadata_config(pipeline_root),
                                              configs.PIPELINE_NAME)
  version_dir = artifacts["PushedModel"].get_string_custom_property(
      pusher_constants.PUSHED_DESTINATION_KEY)
  assert sorted(os.listdir(version_dir)) == sorted([
      push_manifest.MODEL_FILE, push_manifest.LABELS_FILE, push_manifest.FILE_NAME,
      push_manifest.EDGETPU_MODEL_FILE, push_manifest.COMPILER_LOG_FILE])
  with open(os.path.join(version_dir, push_manifest.FILE_NAME), "rb") as f:
    manifest = push_manifest.from_json(f.read())
  assert manifest.input.dtype == manifest.output.dtype == "int8"
  assert manifest.input.zero_point == -128
  report = manifest.edgetpu.compiler
  assert report.command[report.command.index("-m") + 1] == "12"
  assert report.requested_min_runtime_version == report.required_runtime_version == 12
  assert (report.off_chip_memory_used_bytes, report.edgetpu_subgraphs) == (0, 1)
  # The console's pusher line says it all on one line.
  [pusher_line] = [line for line in run.lines if "EdgeTpuPusher done in" in line]
  assert ", int8 I/O, Edge TPU: compiled: " in pusher_line
  assert "needs Edge TPU runtime 12 or later" in pusher_line
  assert "KiB on-chip, 0 B off-chip parameters, 1 Edge TPU subgraph" in pusher_line
  assert "test stand-in" in pusher_line
  with open(os.path.join(pipeline_root, "report.html")) as f:
    page = f.read()
  for text in ("Edge TPU compilation", "12 or later (compiled with -m 12)",
               "Off-chip parameter memory", "Model input and output"):
    assert text in page, text


def test_skewed_eval_split_stops_the_run_before_training(tmp_path):
  """A well-formed dataset whose eval split lacks a digit: TFDV reports skew and nothing trains."""
  data_dir = str(tmp_path / "data")
  os.makedirs(data_dir)
  for split, count in (("train", 2000), ("eval", 500)):
    images, labels = mnist_slices.load_full(split)
    keep = labels != 3 if split == "eval" else np.ones_like(labels, bool)
    images, labels = images[keep][:count], labels[keep][:count]
    names = (idx.TRAIN_IMAGES, idx.TRAIN_LABELS) if split == "train" else (idx.EVAL_IMAGES,
                                                                          idx.EVAL_LABELS)
    mnist_slices.write_idx(os.path.join(data_dir, names[0] + ".gz"), images, idx.IMAGES_MAGIC)
    mnist_slices.write_idx(os.path.join(data_dir, names[1] + ".gz"), labels, idx.LABELS_MAGIC)
  pipeline_root = str(tmp_path / "pipeline")

  run = cli_runs.run_cli(pipeline_root, data_dir)

  assert run.returncode == errors.EXIT_BAD_INPUT
  error = run.stderr.splitlines()[-1]
  assert error.startswith("AnomaliesGate failed: ExampleValidator found 1 data anomaly; refusing "
                          "to train (set allow_anomalies=True to override): split eval, feature "
                          "label: High Linfty"), error
  assert error.endswith(f"(details: {log_path_of(run)})")
  assert "Traceback" not in run.stdout + run.stderr
  with open(log_path_of(run)) as f:
    assert anomalies_gate_executor.DataAnomaliesError.__name__ in f.read()  # The traceback.
  with open(os.path.join(pipeline_root, "report.html")) as f:
    assert "Stopped before training: data validation found 1 anomaly." in f.read()

  gate = node_executions(pipeline_root, "AnomaliesGate")
  assert [e.last_known_state for e in gate] == [metadata_store_pb2.Execution.FAILED]
  artifacts = mlmd_queries.latest_artifacts(local_runner.metadata_config(pipeline_root),
                                            configs.PIPELINE_NAME)
  assert "ExampleAnomalies" in artifacts
  assert "Model" not in artifacts
  assert not os.path.exists(os.path.join(pipeline_root, "Trainer"))


def pushed_versions(pipeline_root: str):
  return versioned_push.list_versions(os.path.join(pipeline_root, paths.PUSHED_MODELS_DIR))


def test_identical_rerun_pushes_nothing_new_and_changed_data_pushes_the_next_version(
    slice_run, mnist_slice_dir, tmp_path):
  pipeline_root = slice_run.pipeline_root
  config = local_runner.metadata_config(pipeline_root)
  first = mlmd_queries.last_run_artifacts(config, configs.PIPELINE_NAME)
  assert pushed_versions(pipeline_root) == [1]

  # Run 2, nothing changed: served from the cache up to the Trainer; the evaluator and the pusher
  # always run (pipeline.ALWAYS_RUN): the deployed version 1 holds the candidate's own int8 bytes,
  # so no comparison, and no duplicate version.
  run = cli_runs.run_cli(pipeline_root, mnist_slice_dir)
  assert run.returncode == 0, run.stderr
  assert "Trainer done in" in run.stderr and "(cached)" in run.stderr
  for node_id in ("MnistExampleGen", "StatisticsGen", "ExampleValidator", "Trainer"):
    states = [e.last_known_state for e in node_executions(pipeline_root, node_id)]
    assert states == [metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED]
  for node_id in pipeline_def.ALWAYS_RUN:
    states = [e.last_known_state for e in node_executions(pipeline_root, node_id)]
    assert states == [metadata_store_pb2.Execution.COMPLETE] * 2, node_id
  second = mlmd_queries.last_run_artifacts(config, configs.PIPELINE_NAME)
  assert second["Model"].id == first["Model"].id
  metrics = read_metrics(second["ModelEvaluation"])
  assert metrics["baseline"] is None
  assert metrics["baseline_skipped"] == (
      "baseline skipped: identical to deployed version 1 (same int8 sha256)")
  assert metrics["baseline_skipped"] in metrics["reason"]
  pushed = second["PushedModel"]
  assert pushed.get_int_custom_property(pusher_constants.PUSHED_KEY) == 1
  assert pushed.get_string_custom_property(pusher_constants.PUSHED_VERSION_KEY) == "1"
  assert pushed.get_int_custom_property(pusher_constants.NEW_VERSION_PUBLISHED_KEY) == 0
  assert pushed_versions(pipeline_root) == [1]
  assert "nothing new pushed: identical to version 1" in run.stdout

  # Run 3, the data changed: a new model, judged against the deployed version 1 (run 1's model),
  # is version 2.
  changed_data = mnist_slices.write_slice(str(tmp_path / "changed"), 1900, 500)
  run = cli_runs.run_cli(pipeline_root, changed_data, "--baseline-tolerance", "1")
  assert run.returncode == 0, run.stderr
  third = mlmd_queries.last_run_artifacts(config, configs.PIPELINE_NAME)
  assert third["Model"].id != first["Model"].id
  metrics = read_metrics(third["ModelEvaluation"])
  deployed = metrics["baseline"]["deployed"]
  assert (deployed["version"], deployed["source_model_uri"]) == (1, first["Model"].uri)
  assert deployed["destination"] == os.path.join(pipeline_root, paths.PUSHED_MODELS_DIR)
  first_metrics = read_metrics(first["ModelEvaluation"])
  assert deployed["tflite_sha256"] == first_metrics["int8"]["tflite_sha256"]
  assert metrics["baseline_skipped"] is None
  assert "baseline (deployed version 1) int8 accuracy" in metrics["reason"]
  pushed = third["PushedModel"]
  assert pushed.get_int_custom_property(pusher_constants.NEW_VERSION_PUBLISHED_KEY) == 1
  assert pushed.get_string_custom_property(pusher_constants.PUSHED_DESTINATION_KEY) == (
      os.path.join(pipeline_root, paths.PUSHED_MODELS_DIR, "2"))
  assert pushed_versions(pipeline_root) == [1, 2]
  assert "nothing new pushed" not in run.stdout


def test_inverted_eval_pixels_stop_the_run_before_training(tmp_path):
  """Train normal, every eval pixel inverted: the image skew check names `image`, nothing trains."""
  data_dir = data_validation.write_shifted_slice(str(tmp_path / "data"),
                                                 data_validation.SHIFTS["inverted"])
  pipeline_root = str(tmp_path / "pipeline")

  run = cli_runs.run_cli(pipeline_root, data_dir)

  assert run.returncode == errors.EXIT_BAD_INPUT
  error = run.stderr.splitlines()[-1]
  assert error.startswith("AnomaliesGate failed: ExampleValidator found 1 data anomaly"), error
  assert "split eval, feature image: High approximate Jensen-Shannon divergence" in error

  gate = node_executions(pipeline_root, "AnomaliesGate")
  assert [e.last_known_state for e in gate] == [metadata_store_pb2.Execution.FAILED]
  assert not os.path.exists(os.path.join(pipeline_root, "Trainer"))


def test_tensorboard_command_serves_training_scalars_and_graph(slice_run):
  pipeline_root = slice_run.pipeline_root
  command = [cli_runs.MNIST_TFX, "tensorboard",
             "--pipeline-root", pipeline_root, "--port", "0"]
  links_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "mnist-tfx-tensorboard-*")))
  server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  try:
    url, printed = None, []
    for line in server.stdout:  # Ends if the command dies, so the assert below then fails.
      printed.append(line)
      if line.startswith("TensorBoard at "):
        url = line.split()[2]
        break
    assert url and url.startswith("http://127.0.0.1:")
    assert f"training: {pipeline_root}" in "".join(printed)  # The root has a comma, space, é.

    def get(path: str):
      with urllib.request.urlopen(url + path, timeout=60) as response:
        return json.load(response)

    runs = get("data/plugin/scalars/tags")
    scalar_tags = runs["training/train"]
    assert {"loss", "accuracy", "learning_rate"} <= set(scalar_tags)
    assert any(tag.startswith("quant_ranges/") for tag in scalar_tags)
    # The evaluation's scalars and confusion matrix sit beside the training run.
    assert "int8/accuracy" in runs["evaluation"]
    assert "int8/confusion_matrix" in get("data/plugin/images/tags")["evaluation"]
    graphs = get("data/plugin/graphs/info")
    assert any(run["tags"] and any(t["op_graph"] for t in run["tags"].values())
               for run in graphs.values())
  finally:
    server.terminate()
    server.wait(timeout=30)
  assert server.returncode == 0
  # The directory of links TensorBoard served is removed when the command stops.
  assert set(glob.glob(os.path.join(tempfile.gettempdir(), "mnist-tfx-tensorboard-*"))) <= (
      links_before)


def test_predict_after_a_run_uses_the_runs_pushed_model_by_default(slice_run, tmp_path):
  """`mnist-tfx predict` with no flag, from where `mnist-tfx run` was run (./output)."""
  from PIL import Image

  from core import int8_runtime
  from serving import preprocess
  pipeline_root = slice_run.pipeline_root
  os.symlink(pipeline_root, tmp_path / "output")  # As if `mnist-tfx run` had used ./output.
  images = idx.read_images(os.path.join(mnist_slices.REPO_ROOT, "data", "mnist",
                                        "t10k-images-idx3-ubyte.gz"))
  image_path = str(tmp_path / "digit.png")
  Image.fromarray(255 - images[0]).save(image_path)  # Dark ink on white paper.
  result = subprocess.run(
      [cli_runs.MNIST_TFX, "predict", image_path, "--json"], capture_output=True, text=True,
      cwd=tmp_path, check=False, timeout=120)
  assert result.returncode == 0, result.stderr
  printed = json.loads(result.stdout)
  pushed_models = os.path.join(pipeline_root, paths.PUSHED_MODELS_DIR)
  newest = max(int(name) for name in os.listdir(pushed_models) if name.isdigit())
  assert printed["model_version"] == newest and printed["device"] == "cpu"
  with open(os.path.join(pushed_models, str(newest), push_manifest.MODEL_FILE), "rb") as f:
    classifier = int8_runtime.Int8Classifier(f.read())
  with open(image_path, "rb") as f:
    expected = classifier.predict_pixels(preprocess.image_to_mnist(f.read())[None])[0]
  assert printed["probabilities"] == [float(p) for p in expected]


def test_bad_label_ends_with_one_line_naming_the_file_and_exit_code_2(tmp_path):
  """One label out of range in the test labels: the run stops at MnistExampleGen, says why."""
  data_dir = mnist_slices.write_slice(str(tmp_path / "data"), 200, 100)
  labels_path = os.path.join(data_dir, idx.EVAL_LABELS + ".gz")
  labels = idx.read_labels(labels_path).copy()
  labels[92] = 11
  mnist_slices.write_idx(labels_path, labels, idx.LABELS_MAGIC)
  pipeline_root = str(tmp_path / "pipeline")

  run = cli_runs.run_cli(pipeline_root, data_dir)

  assert run.returncode == errors.EXIT_BAD_INPUT
  log_path = log_path_of(run)
  assert run.stderr.splitlines()[-1] == (
      f"MnistExampleGen failed: {labels_path}: label 11 at index 92 is out of range 0-9 "
      f"(details: {log_path})")
  assert "Traceback" not in run.stdout + run.stderr
  with open(log_path) as f:
    assert "Traceback" in f.read()
  with open(os.path.join(pipeline_root, "report.html")) as f:  # The report says why, too.
    assert (f"MnistExampleGen failed: {labels_path}: label 11 at index 92 is out of range "
            "0-9.") in html.unescape(f.read())
  # Nothing was published or half-written: no Examples in MLMD, no split directory on disk.
  artifacts = mlmd_queries.latest_artifacts(local_runner.metadata_config(pipeline_root),
                                            configs.PIPELINE_NAME)
  assert "Examples" not in artifacts
  examples_dir = os.path.join(pipeline_root, "MnistExampleGen", "examples")
  assert not os.path.exists(examples_dir) or not any(
      files for _, _, files in os.walk(examples_dir))


def test_bad_hyperparameter_is_bad_input_refused_before_anything_runs(tmp_path, mnist_slice_dir):
  """A setting create_pipeline refuses is exit code 2, named, before any component runs."""
  pipeline_root = str(tmp_path / "pipeline")
  run = cli_runs.run_cli(pipeline_root, mnist_slice_dir, "--train-config", "foo=1")
  assert run.returncode == errors.EXIT_BAD_INPUT
  assert run.stderr.splitlines()[-1].startswith(
      "mnist-tfx run failed: bad settings: Unknown trainer hyperparameter(s) ['foo']")
  assert not any(" done in " in line for line in run.lines)  # No component ran.
  assert not os.path.exists(os.path.join(pipeline_root, "MnistExampleGen"))


def test_internal_failure_exits_1_with_one_line_and_the_traceback_with_verbose(tmp_path,
                                                                               mnist_slice_dir):
  """A failure that is not bad input (here Beam rejects the runner) is exit code 1.

  Without --verbose the console shows no traceback: the bad-input tests above check that.
  """
  run = cli_runs.run_cli(str(tmp_path / "pipeline"), mnist_slice_dir,
                         "--beam-arg=--runner=NoSuchRunner", "--verbose")
  assert run.returncode == errors.EXIT_INTERNAL_FAILURE
  error = run.stderr.splitlines()[-1]
  assert error.startswith("MnistExampleGen failed: internal error, ValueError: ")
  assert "NoSuchRunner" in error and error.endswith(f"(details: {log_path_of(run)})")
  assert "Traceback" in run.stderr
  assert "Component MnistExampleGen is running." in run.stderr  # The log, on the console too.
  with open(log_path_of(run)) as f:
    assert "Component MnistExampleGen is running." in f.read()


def test_short_verbose_flag_never_reaches_another_librarys_flags(tmp_path, mnist_slice_dir):
  """`run -v`, as the README writes it, with Beam's default multi-processing DirectRunner: absl
  inside Beam and TFX parses the process's command line, and once took `-v` for its --verbosity
  (IllegalFlagValueError in MnistExampleGen, an internal error)."""
  completed = subprocess.run(
      [cli_runs.MNIST_TFX, "run", "-v", "--data-dir", mnist_slice_dir, "--pipeline-root",
       str(tmp_path / "pipeline"), "--epochs", "1", *cli_runs.TRAIN_ARGS[2:]],
      capture_output=True, text=True, timeout=1800, check=False)
  assert completed.returncode == errors.EXIT_OK, completed.stderr[-3000:]
  assert "IllegalFlagValueError" not in completed.stderr
  assert "Component MnistExampleGen is running." in completed.stderr  # -v: the log on the console.


def test_require_blessed_fails_with_the_evaluators_reason(slice_run, mnist_slice_dir):
  """--require-blessed turns a refused blessing into exit code 2; --quiet prints the summary.

  Runs last in this module: it adds a run (evaluator and pusher again) to the shared pipeline root.
  """
  run = cli_runs.run_cli(slice_run.pipeline_root, mnist_slice_dir, "--require-blessed", "--quiet",
                         "--min-int8-accuracy", "0.999")
  assert run.returncode == errors.EXIT_BAD_INPUT
  evaluation = mlmd_queries.last_run_artifacts(
      local_runner.metadata_config(slice_run.pipeline_root),
      configs.PIPELINE_NAME)["ModelEvaluation"]
  reason = read_metrics(evaluation)["reason"]
  assert reason.startswith("not blessed")
  # --quiet: no per-component line, the summary, then the one line.
  assert not any(" done in " in line for line in run.lines)
  assert run.stderr.splitlines() == [
      "Int8Evaluator failed: the model was not blessed (--require-blessed): "
      f"{reason.removeprefix('not blessed: ')} (details: {log_path_of(run)})"]
  assert f"Verdict: {reason}" in run.stdout
  assert "Pushed:              nothing (not blessed)" in run.stdout.splitlines()  # Said once.
