"""`mnist-tfx compare`: six routes trained on a real MNIST slice, each int8 model run again here."""

import json
import os

import numpy as np
import pytest

from components.mnist_example_gen import idx
from core import int8_runtime
from mnist_tfx import cli
from mnist_tfx import comparison
from tests import mnist_slices
from trainer_module import hparams as hparams_lib
from trainer_module import keras_baseline

# --quick on this slice trains on all 1,000 images (under comparison.QUICK_TRAIN) for 1 epoch.
SLICE_TRAIN = 1000
SLICE_EVAL = 200
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_comparison(tmp_path_factory):
  data_dir = mnist_slices.write_slice(str(tmp_path_factory.mktemp("slice")), SLICE_TRAIN,
                                      SLICE_EVAL)
  output = str(tmp_path_factory.mktemp("compare"))
  assert cli.main(["compare", "--quick", "--data-dir", data_dir, "--output", output]) == 0
  with open(os.path.join(output, comparison.JSON_FILE)) as f:
    return output, json.load(f)


@pytest.mark.integration
def test_quick_comparison_writes_the_table_json_and_plots(quick_comparison):
  output, result = quick_comparison
  rows = result["routes"]
  assert [row["key"] for row in rows] == [route.key for route in comparison.routes()]
  assert result["data"] == {**result["data"], "train_examples": SLICE_TRAIN,
                            "eval_examples": SLICE_EVAL, "quick": True}
  with open(os.path.join(output, comparison.MARKDOWN_FILE)) as f:
    markdown = f.read()
  header = "| " + " | ".join(heading for heading, _ in comparison.COLUMNS) + " |"
  assert header in markdown
  table = markdown.split(header)[1].split("\n\n")[0].strip().splitlines()[1:]
  assert len(table) == len(rows)
  for line, row in zip(table, rows, strict=True):
    assert line.startswith(f"| {row['label']} |")
    assert line.count("|") == len(comparison.COLUMNS) + 1
  for plot in (comparison.ACCURACY_SIZE_PLOT, comparison.CURVES_PLOT):
    with open(os.path.join(output, plot), "rb") as f:
      assert f.read(8) == PNG_SIGNATURE
  assert not [name for name in os.listdir(output) if name.startswith(".")]  # No temporary files.


@pytest.mark.integration
def test_every_route_made_an_int8_model_the_runtime_runs(quick_comparison):
  output, result = quick_comparison
  images, labels = mnist_slices.load_full("eval")
  images, labels = images[:SLICE_EVAL], labels[:SLICE_EVAL]
  for row in result["routes"]:
    with open(os.path.join(output, row["tflite_file"]), "rb") as f:
      classifier = int8_runtime.Int8Classifier(f.read())
    predictions = [int(np.argmax(classifier.predict_pixels(image))) for image in images]
    assert np.mean(np.array(predictions) == labels) == pytest.approx(row["int8_accuracy"]), row
    assert row["int8_io"] and row["io_dtypes"] == ["int8", "int8"], row
    assert row["epochs"] == 1 and len(row["eval_accuracy_per_epoch"]) == 1, row
    assert row["edgetpu_operations_mapped"] >= 1, row
    assert row["train_seconds"] > 0 and row["int8_latency_ms"]["p50"] > 0, row
    assert row["quantization_drop_pp"] == pytest.approx(
        100 * (row["float_accuracy"] - row["int8_accuracy"]))


@pytest.mark.integration
def test_model_cost_counts_the_seed_keras_models_parameters(quick_comparison):
  _, result = quick_comparison
  seed_ptq, seed_qat = result["routes"][:2]
  hp, _ = keras_baseline.parse_config({})
  keras_parameters = keras_baseline.build_model(hp, quantize=False).count_params()
  units = hp.mlp_units
  for row in (seed_ptq, seed_qat):
    assert row["parameters"] == keras_parameters, row["key"]
    assert row["macs_per_image"] == 784 * units + units * 10, row["key"]


def test_bad_data_dir_fails_before_anything_is_written(tmp_path):
  data_dir = mnist_slices.write_slice(str(tmp_path / "slice"), 20, 10)
  os.remove(os.path.join(data_dir, f"{idx.EVAL_LABELS}.gz"))
  output = tmp_path / "compare"
  output.mkdir()
  (output / comparison.MARKDOWN_FILE).write_text("an earlier comparison\n")
  with pytest.raises(idx.IdxFormatError, match=idx.EVAL_LABELS):
    comparison.run_comparison(data_dir, str(output), quick=True)
  assert os.listdir(output) == [comparison.MARKDOWN_FILE]
  assert (output / comparison.MARKDOWN_FILE).read_text() == "an earlier comparison\n"


def test_epochs_must_be_positive(capsys):
  with pytest.raises(SystemExit):
    cli.build_parser().parse_args(["compare", "--epochs", "0"])
  assert "must be at least 1" in capsys.readouterr().err


def test_cnn_routes_train_the_hand_built_default_architecture():
  defaults = hparams_lib.HParams()
  by_key = {route.key: route for route in comparison.routes()}
  assert hparams_lib.HParams.from_config(by_key["hand_cnn_qat"].config) == defaults
  for key in ("keras_cnn_tfmot_qat", "keras_cnn_ptq"):
    hp, quantize = keras_baseline.parse_config(by_key[key].config)
    assert quantize == (by_key[key].quantization == comparison.QAT)
    assert {name: getattr(hp, name) for name in keras_baseline.KERAS_KEYS} == {
        name: getattr(defaults, name) for name in keras_baseline.KERAS_KEYS}


def test_epochs_override_every_route():
  for route in comparison.routes(epochs=3):
    hp = (hparams_lib.HParams.from_config(route.config) if route.trainer == comparison.HAND_BUILT
          else keras_baseline.parse_config(route.config)[0])
    assert hp.epochs == 3, route.key
