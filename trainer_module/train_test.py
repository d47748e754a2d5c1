"""The training loop on the slice: learning, determinism, resuming, quant delay, TensorBoard."""

import collections
import os
import shutil

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from tests import fixtures_model
from trainer_module import hparams as hparams_lib
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


def test_quant_delay_switches_fake_quant_on_while_ranges_track_from_step_0(examples_dir,
                                                                           tmp_path):
  hparams = {"epochs": 1, "quant_delay": 5, "summary_every_steps": 1}
  run = fixtures_model.train_on_slice(examples_dir, str(tmp_path), hparams)
  events = _events(os.path.join(run.model_run_dir, train.TRAIN_LOG_SUBDIR))
  active = _scalar_series(events, "fake_quant_active")
  assert [step for step, _ in active] == list(range(run.result.steps))
  assert [on for _, on in active] == [float(step >= 5) for step, _ in active]
  conv1_max = _scalar_series(events, "quant_ranges/conv1_relu_quant/max")
  assert conv1_max[0][1] != 6.0 and conv1_max[-1][1] != conv1_max[0][1]


def test_tensorboard_logs(trained_model):
  train_events = _events(os.path.join(trained_model.model_run_dir, train.TRAIN_LOG_SUBDIR))
  scalars = _plugin_tags(train_events, "scalars")
  assert {"loss", "accuracy", "learning_rate", "examples_per_second"} <= scalars
  for quantizer in ("conv1_relu_quant", "conv2_relu_quant", "dense1_relu_quant", "logits_quant"):
    assert {f"quant_ranges/{quantizer}/min", f"quant_ranges/{quantizer}/max"} <= scalars
  histograms = _plugin_tags(train_events, "histograms")
  assert {f"weights/qat_cnn/{layer}/{variable}" for layer in ("conv1", "conv2", "dense1", "logits")
          for variable in ("w", "b")} == histograms
  assert _plugin_tags(train_events, "images") == {"input_images"}
  # The Graphs tab's "train_step" run: the traced step with its FakeQuant ops (and gradients).
  assert _plugin_tags(train_events, "graph_run_metadata_graph") == {"train_step"}
  run_metadata = config_pb2.RunMetadata.FromString(
      train_events.Tensors("train_step")[0].tensor_proto.string_val[0])
  graph = run_metadata.function_graphs[0].pre_optimization_graph
  ops = collections.Counter(node.op for function in graph.library.function
                            for node in function.node_def)
  assert (ops["FakeQuantWithMinMaxArgs"], ops["FakeQuantWithMinMaxVarsPerChannel"],
          ops["FakeQuantWithMinMaxVars"]) == (1, 2, 6)
  learning_rates = [lr for _, lr in _scalar_series(train_events, "learning_rate")]
  assert learning_rates == sorted(learning_rates, reverse=True) and len(learning_rates) > 1

  eval_events = _events(os.path.join(trained_model.model_run_dir, train.EVAL_LOG_SUBDIR))
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
