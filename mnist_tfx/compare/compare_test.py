"""`mnist-tfx compare`: every route trained on a real MNIST slice, each int8 model run here."""

import argparse
import json
import os
import shutil

import numpy as np
import pytest

from components.mnist_example_gen import idx
from core import errors
from core import int8_runtime
from mnist_tfx.compare import aggregate
from mnist_tfx.compare import cli as compare_cli
from mnist_tfx.compare import qat_graphs
from mnist_tfx.compare import render
from mnist_tfx.compare import routes as routes_lib
from mnist_tfx.compare import run
from tests import mnist_slices
from trainer_module import hparams as hparams_lib
from trainer_module import keras_baseline

# --quick on this slice trains on all 1,000 images (under training.QUICK_TRAIN) for 1 epoch.
SLICE_TRAIN = 1000
SLICE_EVAL = 200
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def compare(argv):
  """Runs `mnist-tfx compare ARGV` (the subcommand's own parser and command)."""
  parser = argparse.ArgumentParser()
  compare_cli.add_parser(parser.add_subparsers())
  args = parser.parse_args(["compare", *argv])
  return args.func(args)


@pytest.fixture(scope="module")
def slice_dir(tmp_path_factory):
  return mnist_slices.write_slice(str(tmp_path_factory.mktemp("slice")), SLICE_TRAIN, SLICE_EVAL)


@pytest.fixture(scope="module")
def quick_comparison(slice_dir, tmp_path_factory):
  output = str(tmp_path_factory.mktemp("compare"))
  assert compare(["--quick", "--data-dir", slice_dir, "--output", output]) == 0
  with open(os.path.join(output, run.JSON_FILE)) as f:
    return output, json.load(f)


def _table_rows(markdown: str, columns) -> list:
  header = "| " + " | ".join(heading for heading, _ in columns) + " |"
  assert header in markdown
  return markdown.split(header)[1].split("\n\n")[0].strip().splitlines()[1:]


@pytest.mark.integration
def test_quick_comparison_writes_the_tables_json_and_plots(quick_comparison):
  output, result = quick_comparison
  entries = result["routes"]
  assert [e["route"]["key"] for e in entries] == [route.key for route in routes_lib.routes()]
  assert result["data"] == {**result["data"], "train_examples": SLICE_TRAIN,
                            "eval_examples": SLICE_EVAL, "quick": True}
  assert result["seeds"] == [0] and result["machine_before"]["cores"] >= 1
  with open(os.path.join(output, run.MARKDOWN_FILE)) as f:
    markdown = f.read()
  for columns in (render.ACCURACY_COLUMNS, render.COST_COLUMNS):
    rows = _table_rows(markdown, columns)
    assert len(rows) == len(entries)
    for line, entry in zip(rows, entries, strict=True):
      assert line.startswith(f"| {entry['route']['label']} | {entry['route']['recipe']} |")
      assert line.count("|") == len(columns) + 1
  assert "cosine learning-rate decay" not in markdown  # The schedule is one-cycle.
  assert routes_lib.recipe_description(routes_lib.TRAINER_RECIPE) in markdown
  for plot in (run.ACCURACY_SIZE_PLOT, run.CURVES_PLOT):
    with open(os.path.join(output, plot), "rb") as f:
      assert f.read(8) == PNG_SIGNATURE
  assert not [name for name in os.listdir(output) if name.startswith(".")]  # No temporary files.


@pytest.mark.integration
def test_every_route_made_an_int8_model_the_runtime_runs(quick_comparison):
  output, result = quick_comparison
  images, labels = mnist_slices.load_full("eval")
  images, labels = images[:SLICE_EVAL], labels[:SLICE_EVAL]
  for entry in result["routes"]:
    (row,) = entry["runs"]
    with open(os.path.join(output, row["tflite_file"]), "rb") as f:
      classifier = int8_runtime.Int8Classifier(f.read())
    predictions = [int(np.argmax(classifier.predict_pixels(image))) for image in images]
    assert np.mean(np.array(predictions) == labels) == pytest.approx(row["int8_accuracy"]), row
    assert row["int8_io"] and row["io_dtypes"] == ["int8", "int8"], row
    assert row["epochs"] == 1 and len(row["eval_history"]) == 1, row
    assert row["edgetpu_operations_mapped"] >= 1, row
    assert row["train_seconds"] > 0 and row["int8_latency_ms"]["p50"] > 0, row
    assert row["quantization_drop_pp"] == pytest.approx(
        100 * (row["float_accuracy"] - row["int8_accuracy"]))
    assert entry["summary"]["int8_accuracy"]["mean"] == row["int8_accuracy"]


@pytest.mark.integration
def test_model_cost_counts_the_seed_keras_models_parameters(quick_comparison):
  _, result = quick_comparison
  by_key = {e["route"]["key"]: e["runs"][0] for e in result["routes"]}
  hp = keras_baseline.parse_config({}).hp
  keras_parameters = keras_baseline.build_model(hp, quantize=False).count_params()
  for key in ("keras_mlp128_ptq_seed", "keras_mlp128_tfmot_seed", "keras_mlp128_ptq",
              "hand_mlp128"):
    assert by_key[key]["parameters"] == keras_parameters, key
    assert by_key[key]["macs_per_image"] == 784 * hp.mlp_units + hp.mlp_units * 10, key
  cnn = {by_key[key]["parameters"] for key in ("hand_cnn", "keras_cnn_tfmot", "keras_cnn_ptq")}
  assert len(cnn) == 1  # The same network, whoever built it.


@pytest.mark.integration
def test_the_qat_methods_are_read_from_both_training_graphs(quick_comparison):
  output, result = quick_comparison
  methods = result["qat_methods"]
  assert set(methods["hand_built"]) == set(methods["tfmot"]) == set(qat_graphs.ROLES)
  with open(os.path.join(output, run.MARKDOWN_FILE)) as f:
    markdown = f.read()
  for role in qat_graphs.ROLES:
    assert f"| {role} | {methods['hand_built'][role]} | {methods['tfmot'][role]} |" in markdown
  runs = {e["route"]["key"]: e["runs"][0] for e in result["routes"]}
  assert len(runs["hand_cnn"]["relu_codes_below_zero"]) == 4  # 3 conv + the hidden dense.


def test_hand_built_and_tfmot_graphs_differ_where_their_code_does():
  """The graph reading finds what each quantizer's code does (trainer_module/quantizers.py and
  tfmot's quantizers.py), not a fixed text."""
  hand = qat_graphs.hand_built_fake_quants({"model": "mlp", "mlp_units": 16, "ema_decay": 0.9})
  tfmot = qat_graphs.tfmot_fake_quants({"model": "mlp", "mlp_units": 16, "quantize": True})
  roles = {f.role: f for f in hand}
  assert roles[qat_graphs.INPUT].range_source == "fixed in the op: [0, 1]"
  assert "decay 0.9 " in roles[qat_graphs.RELU_OUTPUT].range_source
  assert roles[qat_graphs.DENSE_WEIGHTS].narrow_range and not roles[
      qat_graphs.DENSE_WEIGHTS].per_channel
  assert "not stored" in roles[qat_graphs.DENSE_WEIGHTS].range_source
  tfmot_roles = {f.role: f for f in tfmot}
  assert "decay 0.999" in tfmot_roles[qat_graphs.RELU_OUTPUT].range_source
  assert "from [-6, 6]" in tfmot_roles[qat_graphs.RELU_OUTPUT].range_source
  assert "running min/max" in tfmot_roles[qat_graphs.INPUT].range_source
  assert [f.role for f in hand] == [f.role for f in tfmot]


def test_bad_data_dir_fails_before_anything_is_written(tmp_path):
  data_dir = mnist_slices.write_slice(str(tmp_path / "slice"), 20, 10)
  os.remove(os.path.join(data_dir, f"{idx.EVAL_LABELS}.gz"))
  output = tmp_path / "compare"
  output.mkdir()
  (output / run.MARKDOWN_FILE).write_text("an earlier comparison\n")
  with pytest.raises(idx.IdxFormatError, match=idx.EVAL_LABELS):
    compare(["--quick", "--data-dir", data_dir, "--output", str(output)])
  assert os.listdir(output) == [run.MARKDOWN_FILE]
  assert (output / run.MARKDOWN_FILE).read_text() == "an earlier comparison\n"


def test_unknown_route_fails_before_anything_is_written(tmp_path):
  output = tmp_path / "compare"
  with pytest.raises(errors.PipelineInputError, match=r"unknown route\(s\) \['hand_gpt'\]"):
    compare(["--quick", "--routes", "hand_cnn,hand_gpt", "--output", str(output)])
  assert not output.exists()


@pytest.mark.parametrize("argv, message", [(["--epochs", "0"], "must be at least 1"),
                                           (["--seeds", "0,0"], "distinct"),
                                           (["--seeds", "1,x"], "integers separated by commas")])
def test_bad_numbers_are_refused_by_the_parser(argv, message, capsys):
  with pytest.raises(SystemExit):
    compare(argv)
  assert message in capsys.readouterr().err


def test_routes_of_one_network_share_the_recipe():
  recipe = routes_lib.trainer_recipe()
  by_network = {}
  for route in routes_lib.routes():
    if route.recipe != routes_lib.TRAINER_RECIPE:
      continue
    if route.trainer == routes_lib.HAND_BUILT:
      hp = hparams_lib.HParams.from_config(route.config)
    else:
      hp, quantize, initializer = keras_baseline.parse_config(route.config)
      assert quantize == (route.quantization == routes_lib.QAT)
      assert initializer == keras_baseline.FAN_IN_TRUNCATED_NORMAL
    assert {name: getattr(hp, name) for name in recipe} == recipe, route.key
    fields = ("model", "dropout") + (routes_lib.CNN_FIELDS if hp.model == "cnn" else
                                     ("mlp_units",))
    network = {name: getattr(hp, name) for name in fields}
    by_network.setdefault(route.network, []).append(network)
  for network, configs in by_network.items():
    assert all(config == configs[0] for config in configs), network


def test_seed_recipe_rows_keep_the_seeds_example():
  seed_routes = [r for r in routes_lib.routes() if r.recipe == routes_lib.SEED_RECIPE]
  assert {r.quantization for r in seed_routes} == {routes_lib.QAT, routes_lib.PTQ}
  for route in seed_routes:
    hp, _, initializer = keras_baseline.parse_config(route.config)
    assert (hp.lr_schedule, hp.learning_rate, hp.epochs, hp.max_shift, initializer) == (
        "constant", 1e-3, 5, 0, keras_baseline.GLOROT_UNIFORM)
    assert any(r.network == route.network and r.quantization == route.quantization and
               r.recipe == routes_lib.TRAINER_RECIPE for r in routes_lib.routes())


def test_run_config_sets_the_seed_and_overrides_epochs():
  for route in routes_lib.routes():
    config = routes_lib.run_config(route, seed=7, epochs=3)
    hp = (hparams_lib.HParams.from_config(config) if route.trainer == routes_lib.HAND_BUILT
          else keras_baseline.parse_config(config).hp)
    assert (hp.seed, hp.epochs) == (7, 3), route.key


def test_summary_over_seeds_gives_mean_range_and_time_to_accuracy():
  runs = [{"seed": seed, "float_accuracy": f, "int8_accuracy": i, "quantization_drop_pp": d,
           "train_seconds": 10.0, "wall_seconds": 12.0, "training_tflop": 1.0,
           "int8_latency_ms": {"p50": 0.05, "p99": 0.1}, "int8_images_per_second": 100.0,
           "eval_history": history}
          for seed, f, i, d, history in (
              (0, 0.995, 0.994, 0.1, [[5.0, 0.991], [10.0, 0.994]]),
              (1, 0.993, 0.993, 0.0, [[5.0, 0.985], [10.0, 0.993]]))]
  summary = aggregate.summarize(runs)
  assert summary["int8_accuracy"] == {"mean": pytest.approx(0.9935), "min": 0.993, "max": 0.994,
                                      "n": 2}
  assert summary["time_to_accuracy"]["99.0"] == {
      "reached": 2, "runs": 2, "seconds": {"mean": 7.5, "min": 5.0, "max": 10.0, "n": 2}}
  assert summary["time_to_accuracy"]["99.4"]["reached"] == 1
  assert summary["eval_accuracy_per_epoch"] == pytest.approx([0.988, 0.9935])


@pytest.mark.integration
def test_resume_reuses_the_finished_runs_of_the_same_settings(quick_comparison, slice_dir,
                                                              tmp_path):
  output, result = quick_comparison
  copy = str(tmp_path / "compare")
  shutil.copytree(output, copy)
  keys = ["keras_mlp128_ptq", "hand_mlp128"]  # In routes() order, whatever --routes says.
  assert compare(["--quick", "--resume", "--routes", ",".join(reversed(keys)),
                  "--data-dir", slice_dir, "--output", copy]) == 0
  with open(os.path.join(copy, run.JSON_FILE)) as f:
    resumed = json.load(f)
  first = {e["route"]["key"]: e["runs"][0] for e in result["routes"]}
  assert [e["route"]["key"] for e in resumed["routes"]] == keys
  for entry in resumed["routes"]:
    (row,) = entry["runs"]
    assert row == {**first[entry["route"]["key"]], "reused": True}
