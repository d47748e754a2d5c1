"""The training loop on the slice: learning, determinism, resuming, quant delay, TensorBoard."""

import collections
import dataclasses
import os
import re
import shutil

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from core import contract
from tests import fixtures_data
from tests import fixtures_model
from trainer_module import hparams as hparams_lib
from trainer_module import model as model_lib
from trainer_module import optimizer as optimizer_lib
from trainer_module import progress
from trainer_module import train

pytestmark = pytest.mark.integration  # Runs TFX pipelines or trains models.


def _checkpoint_values(checkpoint_prefix):
  """Every saved variable (weights, quant ranges, Adam slots, step) by its checkpoint key."""
  reader = tf.train.load_checkpoint(checkpoint_prefix)
  return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
          if "_CHECKPOINTABLE_OBJECT_GRAPH" not in key}


def _assert_same_checkpoints(expected_prefix, actual_prefix):
  expected, actual = _checkpoint_values(expected_prefix), _checkpoint_values(actual_prefix)
  assert sorted(expected) == sorted(actual)
  for key, value in expected.items():
    np.testing.assert_array_equal(actual[key], value, err_msg=key)


def _events(log_dir):
  accumulator = event_accumulator.EventAccumulator(
      log_dir, size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  return accumulator


def _plugin_tags(accumulator, plugin):
  return {tag for tag in accumulator.Tags()[event_accumulator.TENSORS]
          if accumulator.SummaryMetadata(tag).plugin_data.plugin_name == plugin}


def _scalar_series(accumulator, tag):
  return [(event.step, float(tf.make_ndarray(event.tensor_proto)))
          for event in accumulator.Tensors(tag)]


def test_training_beats_chance_widely(trained_model):
  assert trained_model.result.eval_accuracy > 0.9
  assert trained_model.result.epochs == fixtures_model.SLICE_HPARAMS["epochs"]


def test_same_seed_gives_identical_weights(trained_model, examples_dir, tmp_path):
  again = fixtures_model.train_on_slice(examples_dir, str(tmp_path), fixtures_model.SLICE_HPARAMS)
  _assert_same_checkpoints(tf.train.latest_checkpoint(trained_model.result.checkpoint_dir),
                           tf.train.latest_checkpoint(again.result.checkpoint_dir))


def test_interrupted_training_resumes_and_ends_equal(trained_model, examples_dir, tmp_path):
  # The on-disk state of a run killed during its last epoch: only the previous epoch's checkpoint.
  epochs = fixtures_model.SLICE_HPARAMS["epochs"]
  checkpoint_dir = os.path.join(tmp_path, "model_run", train.CHECKPOINT_SUBDIR)
  shutil.copytree(trained_model.result.checkpoint_dir, checkpoint_dir)
  for name in os.listdir(checkpoint_dir):
    if name.startswith(f"ckpt-{epochs}."):
      os.remove(os.path.join(checkpoint_dir, name))
  tf.compat.v1.train.update_checkpoint_state(checkpoint_dir, f"ckpt-{epochs - 1}")

  resumed = fixtures_model.train_on_slice(examples_dir, str(tmp_path),
                                          fixtures_model.SLICE_HPARAMS)
  assert len(resumed.result.epoch_examples_per_second) == 1  # Only the missing epoch ran.
  assert resumed.result.epochs == epochs
  assert resumed.result.checkpoint_dir == checkpoint_dir
  _assert_same_checkpoints(tf.train.latest_checkpoint(trained_model.result.checkpoint_dir),
                           tf.train.latest_checkpoint(checkpoint_dir))


def test_quant_delay_switches_fake_quant_on_while_ranges_track_from_step_0(
    examples_dir, tmp_path, monkeypatch, capsys):
  monkeypatch.setenv(progress.ENV_VAR, "lines")
  hparams = {"epochs": 1, "quant_delay": 5, "summary_every_steps": 1}
  run = fixtures_model.train_on_slice(examples_dir, str(tmp_path), hparams)
  # The progress display in `lines` mode: one plain line per quarter of the run, on stderr.
  lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("training")]
  total, batch = fixtures_data.SLICE_TRAIN, hparams_lib.HParams().batch_size
  done = [min(total, -(-quarter * total // 4 // batch) * batch) for quarter in (1, 2, 3, 4)]
  assert [line.split(" examples")[0] for line in lines] == [
      f"training: {examples}/{total}" for examples in done]
  assert all(re.search(r"examples/s, loss \d\.\d{4}, accuracy \d\.\d{4}, ETA", line)
             for line in lines)
  events = _events(os.path.join(run.model_run_dir, contract.MODEL_RUN_TRAIN_DIR))
  active = _scalar_series(events, "fake_quant_active")
  assert [step for step, _ in active] == list(range(run.result.steps))
  assert [on for _, on in active] == [float(step >= 5) for step, _ in active]
  conv1_max = _scalar_series(events, "quant_ranges/conv1_relu_quant/max")
  assert conv1_max[0][1] != 6.0 and conv1_max[-1][1] != conv1_max[0][1]


def test_tensorboard_logs(trained_model):
  train_events = _events(os.path.join(trained_model.model_run_dir, contract.MODEL_RUN_TRAIN_DIR))
  scalars = _plugin_tags(train_events, "scalars")
  assert {"loss", "accuracy", "learning_rate", "examples_per_second"} <= scalars
  convs = [f"conv{i + 1}" for i in range(len(hparams_lib.HParams().conv_filters))]
  for quantizer in [f"{conv}_relu_quant" for conv in convs] + ["dense1_relu_quant", "logits_quant"]:
    assert {f"quant_ranges/{quantizer}/min", f"quant_ranges/{quantizer}/max"} <= scalars
  histograms = _plugin_tags(train_events, "histograms")
  assert {f"weights/qat_cnn/{layer}/{variable}" for layer in convs + ["dense1", "logits"]
          for variable in ("w", "b")} == histograms
  assert _plugin_tags(train_events, "images") == {"input_images"}
  # The Graphs tab's "train_step" run: the traced step with its FakeQuant ops (and gradients).
  assert _plugin_tags(train_events, "graph_run_metadata_graph") == {
      "train_step", train.FORWARD_GRAPH_TAG}
  run_metadata = config_pb2.RunMetadata.FromString(
      train_events.Tensors("train_step")[0].tensor_proto.string_val[0])
  # The multi-step training function: a While loop over the step, whose body and branches are
  # library functions.
  (graph,) = [function_graph.pre_optimization_graph
              for function_graph in run_metadata.function_graphs
              if any(node.op == "While" for node in function_graph.pre_optimization_graph.node)]
  ops = collections.Counter(node.op for function in graph.library.function
                            for node in function.node_def)
  assert (ops["FakeQuantWithMinMaxArgs"], ops["FakeQuantWithMinMaxVarsPerChannel"],
          ops["FakeQuantWithMinMaxVars"]) == (1, len(convs), 2 + len(convs) + 2)
  # The "forward" run: the inference graph as exported, each module's ops in its name scope.
  assert _plugin_tags(train_events, "graph_run_metadata_graph") >= {train.FORWARD_GRAPH_TAG}
  run_metadata = config_pb2.RunMetadata.FromString(
      train_events.Tensors(train.FORWARD_GRAPH_TAG)[0].tensor_proto.string_val[0])
  (forward_graph,) = run_metadata.function_graphs
  nodes = {node.name: node for node in forward_graph.pre_optimization_graph.node}
  scopes = {name.split("/")[1] for name in nodes if name.startswith("qat_cnn/")}
  assert scopes >= {"input_quant", "conv1", "conv1_relu_quant", "pool1", "conv2",
                    "conv2_relu_quant", "pool2", "flatten", "dense1", "dense1_relu_quant",
                    "logits", "logits_quant"}
  assert "qat_cnn/conv1/weight_quant/FakeQuantWithMinMaxVarsPerChannel" in nodes
  assert nodes["qat_cnn/conv1/Conv2D"].input[0].startswith("qat_cnn/input_quant/FakeQuant")
  assert nodes["qat_cnn/pool1"].op == "MaxPool"
  assert not any(node.op == "AssignVariableOp" for node in nodes.values())  # No range updates.
  learning_rates = [lr for _, lr in _scalar_series(train_events, "learning_rate")]
  # One cycle: up from a tenth of the peak during the warm-up, then down towards 0.
  peak = learning_rates.index(max(learning_rates))
  assert learning_rates[0] == pytest.approx(hparams_lib.HParams().learning_rate / 10)
  assert learning_rates[:peak + 1] == sorted(learning_rates[:peak + 1])
  assert learning_rates[peak:] == sorted(learning_rates[peak:], reverse=True)
  assert len(learning_rates) > 2 and learning_rates[-1] < learning_rates[peak]

  eval_events = _events(os.path.join(trained_model.model_run_dir, contract.MODEL_RUN_EVAL_DIR))
  accuracy = _scalar_series(eval_events, "accuracy")
  assert len(accuracy) == fixtures_model.SLICE_HPARAMS["epochs"]
  assert accuracy[-1][1] == pytest.approx(trained_model.result.eval_accuracy)


def test_unknown_hyperparameter_fails_before_anything_is_written(examples_dir, tmp_path):
  with pytest.raises(ValueError, match=r"Unknown trainer hyperparameter\(s\) \['epoch'\]"):
    fixtures_model.train_on_slice(examples_dir, str(tmp_path), {"epoch": 3})
  assert not os.listdir(tmp_path)


def test_missing_training_data_fails_before_anything_is_written(tmp_path):
  with pytest.raises(FileNotFoundError, match="No TFRecord files match"):
    fixtures_model.train_on_slice(str(tmp_path / "no_examples"), str(tmp_path / "out"), {})
  assert not os.path.exists(tmp_path / "out")


def test_empty_training_split_fails_before_anything_is_written(examples_dir, tmp_path):
  empty_examples = tmp_path / "empty_examples"
  shutil.copytree(examples_dir, empty_examples)
  for train_file in (empty_examples / "Split-train").iterdir():
    with tf.io.TFRecordWriter(str(train_file), tf.io.TFRecordOptions(compression_type="GZIP")):
      pass
  with pytest.raises(ValueError, match="hold no examples"):
    fixtures_model.train_on_slice(str(empty_examples), str(tmp_path / "out"), {})
  assert not os.path.exists(tmp_path / "out")


def test_hparams_from_json_config():
  hp = hparams_lib.HParams.from_config({"conv_filters": [16, 32], "learning_rate": 1,
                                        "epochs": "3"})
  assert (hp.conv_filters, hp.learning_rate, hp.epochs) == ((16, 32), 1.0, 3)
  with pytest.raises(ValueError, match="lr_schedule"):
    hparams_lib.HParams.from_config({"lr_schedule": "step"})
  with pytest.raises(ValueError, match="batch_size=.x. is not a int"):
    hparams_lib.HParams.from_config({"batch_size": "x"})


def test_augmentation_and_regularization_fields_default_to_off_and_are_validated():
  hp = hparams_lib.HParams()
  assert (hp.weight_decay, hp.label_smoothing, hp.max_rotation, hp.max_scale) == (0, 0, 0, 0)
  hp = hparams_lib.HParams.from_config({"weight_decay": 0, "label_smoothing": "0.1",
                                        "max_rotation": 10, "max_scale": "0.1"})
  assert (hp.weight_decay, hp.label_smoothing, hp.max_rotation, hp.max_scale) == (
      0.0, 0.1, 10.0, 0.1)
  for name, value in (("weight_decay", -0.1), ("label_smoothing", 1.0), ("max_rotation", -1.0),
                      ("max_scale", 1.0)):
    with pytest.raises(ValueError, match=name):
      hparams_lib.HParams.from_config({name: value})


def test_checkpoint_dir_is_keyed_by_data_and_hyperparameters(tmp_path):
  root = str(tmp_path)
  hp = hparams_lib.HParams(checkpoint_dir=root)
  key_dir = train.checkpoint_dir_for(hp, ["a/Split-train/*"], "run1")
  assert os.path.dirname(key_dir) == root
  # A Trainer retry (new model_run_dir) with the same inputs finds the same checkpoints...
  assert train.checkpoint_dir_for(hp, ["a/Split-train/*"], "run2") == key_dir
  # ...other data or other hyperparameters do not.
  assert train.checkpoint_dir_for(hp, ["b/Split-train/*"], "run1") != key_dir
  assert train.checkpoint_dir_for(hparams_lib.HParams(checkpoint_dir=root, epochs=3),
                                  ["a/Split-train/*"], "run1") != key_dir
  assert train.checkpoint_dir_for(hparams_lib.HParams(), ["a"], "run1") == os.path.join(
      "run1", train.CHECKPOINT_SUBDIR)


def test_shift_translates_each_image_by_its_own_offset():
  images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 251 + 1
  pixels = tf.constant(images.reshape(3, -1), tf.uint8)
  shifted = train._shift(pixels, 2, tf.constant([0, 7], tf.int64)).numpy().reshape(3, 28, 28)
  padded = np.pad(images, [[0, 0], [2, 2], [2, 2]])
  offsets = set()
  for image, original in zip(shifted, padded, strict=True):
    # Exactly one window of the zero-padded image, i.e. a translation by (dy, dx) in [-2, 2]^2.
    (window,) = [(dy, dx) for dy in range(5) for dx in range(5)
                 if np.array_equal(original[dy:dy + 28, dx:dx + 28], image)]
    offsets.add(window)
  assert len(offsets) > 1  # Not one offset for the whole batch.


def _centroid(image):
  ys, xs = np.mgrid[0:28, 0:28]
  return np.array([(ys * image).sum(), (xs * image).sum()]) / image.sum()


def test_rotate_scale_turns_and_scales_each_image_about_the_centre():
  blob = np.zeros([28, 28], np.float32)
  blob[5:8, 12:16] = 1.0  # Off-centre, so a rotation moves its centroid around the centre.
  images = tf.constant(np.tile(blob[np.newaxis, :, :, np.newaxis], [4, 1, 1, 1]))
  seed = tf.constant([0, 7], tf.int64)
  np.testing.assert_allclose(train._rotate_scale(images, 0.0, 0.0, seed).numpy(), images.numpy())
  centre = np.array([13.5, 13.5])
  radius = np.linalg.norm(_centroid(blob) - centre)
  rotated = train._rotate_scale(images, 30.0, 0.0, seed).numpy()[..., 0]
  direction = lambda offset: np.degrees(np.arctan2(offset[1], offset[0]))  # noqa: E731
  angles = []
  for image in rotated:
    offset = _centroid(image) - centre
    assert np.linalg.norm(offset) == pytest.approx(radius, rel=0.03)
    assert image.sum() == pytest.approx(blob.sum(), rel=0.05)
    turn = direction(offset) - direction(_centroid(blob) - centre)
    angles.append((turn + 180.0) % 360.0 - 180.0)
  assert all(abs(angle) <= 30.5 for angle in angles) and np.ptp(angles) > 5  # Own angle each.
  scaled = train._rotate_scale(images, 0.0, 0.2, seed).numpy()[..., 0]
  ratios = [np.linalg.norm(_centroid(image) - centre) / radius for image in scaled]
  assert all(0.78 <= ratio <= 1.22 for ratio in ratios) and np.ptp(ratios) > 0.02


def test_one_cycle_learning_rate():
  hp = hparams_lib.HParams(lr_schedule="one_cycle", learning_rate=1.0, warmup_fraction=0.2)
  rates = [float(optimizer_lib.learning_rate(hp, step, 10, 100)) for step in (0, 10, 20, 60, 100)]
  assert rates == pytest.approx([0.1, 0.55, 1.0, 0.5, 0.0], abs=1e-6)


def test_presets_set_their_values_and_explicit_keys_win():
  large = hparams_lib.HParams.from_config({"preset": "cnn_large"})
  assert (large.conv_filters, large.epochs, large.lr_schedule) == ((32, 64), 10, "cosine")
  assert hparams_lib.HParams.from_config({"preset": "cnn_large", "epochs": 2}).epochs == 2
  assert hparams_lib.HParams.from_config({"preset": "default"}) == hparams_lib.HParams()
  accurate = hparams_lib.HParams.from_config({"preset": "accurate", "seed": 2})
  assert dataclasses.replace(accurate, seed=0) == hparams_lib.HParams(
      **hparams_lib.PRESETS["accurate"])
  assert (accurate.conv_filters, accurate.lr_schedule, accurate.seed) == (
      tuple(hparams_lib.PRESETS["accurate"]["conv_filters"]), "one_cycle", 2)
  with pytest.raises(ValueError, match="Unknown trainer preset 'huge'"):
    hparams_lib.HParams.from_config({"preset": "huge"})


def test_training_flop_of_the_default_is_within_the_budget():
  # Issue 10: <= 4 TFLOP for the default run on the 60,000 training images.
  hp = hparams_lib.HParams()
  assert model_lib.training_flop(hp, 60000) <= 4e12
  large = hparams_lib.HParams.from_config({"preset": "cnn_large"})
  assert model_lib.forward_macs(large) == (28 * 28 * 9 * 32 + 14 * 14 * 9 * 32 * 64 +
                                           7 * 7 * 64 * 128 + 128 * 10)
