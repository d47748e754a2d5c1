"""Int8Evaluator executor on the MNIST slice with the trainer's real models."""

import glob
import hashlib
import json
import os

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from components.evaluator import blessing as blessing_lib
from components.evaluator import constants
from components.evaluator import executor
from core import contract
from core import evaluation_metrics
from core import features
from core import int8_tflite

# The slice models are trained for seconds on 2,000 images: thresholds for them, not for MNIST.
SLICE_PARAMS = {constants.MIN_INT8_ACCURACY_KEY: 0.85, constants.MAX_QUANTIZATION_DROP_KEY: 0.02}
EVALUATION_FILES = {evaluation_metrics.FILE_NAME, constants.TENSORBOARD_DIR,
                    constants.CANDIDATE_TFLITE_FILE}


def executor_args(tmp_path, examples_uri, model_uri, push_destination=None,
                  split_names=(contract.TRAIN_SPLIT, contract.EVAL_SPLIT), **params):
  """(input_dict, output_dict, exec_properties) as the orchestrator would pass them."""
  examples = standard_artifacts.Examples()
  examples.uri = examples_uri
  examples.split_names = artifact_utils.encode_split_names(list(split_names))
  model = standard_artifacts.Model()
  model.uri = model_uri
  model.id = 11
  input_dict = {standard_component_specs.EXAMPLES_KEY: [examples],
                standard_component_specs.MODEL_KEY: [model]}
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = str(tmp_path / "evaluation")
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / "blessing")
  for artifact in (evaluation, blessing):
    os.makedirs(artifact.uri)
  output_dict = {standard_component_specs.EVALUATION_KEY: [evaluation],
                 standard_component_specs.BLESSING_KEY: [blessing]}
  exec_properties = {
      constants.MIN_INT8_ACCURACY_KEY: blessing_lib.DEFAULT_MIN_INT8_ACCURACY,
      constants.MAX_QUANTIZATION_DROP_KEY: blessing_lib.DEFAULT_MAX_QUANTIZATION_DROP,
      constants.BASELINE_TOLERANCE_KEY: blessing_lib.DEFAULT_BASELINE_TOLERANCE,
      constants.EVAL_SPLIT_KEY: contract.EVAL_SPLIT,
      constants.PUSH_DESTINATION_KEY: push_destination or "",
      **params,
  }
  return input_dict, output_dict, exec_properties


def execute(tmp_path, input_dict, output_dict, exec_properties):
  context = executor.Executor.Context(tmp_dir=str(tmp_path / "tmp"), unique_id="1")
  executor.Executor(context).Do(input_dict, output_dict, exec_properties)


def run_executor(tmp_path, *args, **kwargs):
  """Runs the executor; returns its (evaluation, blessing) artifacts."""
  input_dict, output_dict, exec_properties = executor_args(tmp_path, *args, **kwargs)
  execute(tmp_path, input_dict, output_dict, exec_properties)
  return (output_dict[standard_component_specs.EVALUATION_KEY][0],
          output_dict[standard_component_specs.BLESSING_KEY][0])


def read_metrics(evaluation):
  with open(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME)) as f:
    return json.load(f)


def read_eval_split(examples_uri):
  """(pixels uint8 [N, 784], labels [N]) of the eval split, parsed from the TFRecords directly."""
  pixels, labels = [], []
  files = glob.glob(os.path.join(examples_uri, f"Split-{contract.EVAL_SPLIT}", "*"))
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    pixels.append(feature[contract.IMAGE_KEY].int64_list.value)
    labels.append(feature[contract.LABEL_KEY].int64_list.value[0])
  return np.array(pixels, np.uint8), np.array(labels)


def int8_predictions(tflite_path, pixels):
  """Argmax of the TFLite model run image by image, quantizing with the model's own parameters."""
  interpreter = Interpreter(model_path=tflite_path)
  interpreter.allocate_tensors()
  [input_detail] = interpreter.get_input_details()
  [output_detail] = interpreter.get_output_details()
  scale, zero_point = input_detail["quantization"]
  quantized = np.clip(np.round(pixels / 255.0 / scale) + zero_point, -128, 127).astype(np.int8)
  predictions = []
  for image in quantized:
    interpreter.set_tensor(input_detail["index"], image.reshape(input_detail["shape"]))
    interpreter.invoke()
    predictions.append(int(np.argmax(interpreter.get_tensor(output_detail["index"])[0])))
  return np.array(predictions)


def confusion_matrix(labels, predictions):
  matrix = np.zeros((contract.NUM_CLASSES, contract.NUM_CLASSES), np.int64)
  for label, prediction in zip(labels, predictions, strict=True):
    matrix[label, prediction] += 1
  return matrix


def tensorboard_values(log_dir):
  """{tag: ndarray} of everything written to the TensorBoard event files under log_dir."""
  values = {}
  for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        values[value.tag] = tf.make_ndarray(value.tensor)
  return values


def blessing_files(blessing):
  return sorted(os.listdir(blessing.uri))


def test_trained_model_is_blessed_and_metrics_match_direct_computation(tmp_path, examples_dir,
                                                                     trained_model_uri):
  destination = str(tmp_path / "nothing_pushed_yet")
  evaluation, blessing = run_executor(tmp_path, examples_dir, trained_model_uri,
                                      push_destination=destination, **SLICE_PARAMS)

  metrics = read_metrics(evaluation)
  pixels, labels = read_eval_split(examples_dir)
  tflite_path = os.path.join(evaluation.uri, constants.CANDIDATE_TFLITE_FILE)
  predictions = int8_predictions(tflite_path, pixels)
  assert metrics["num_examples"] == len(labels)
  assert metrics["int8"]["confusion_matrix"] == confusion_matrix(labels, predictions).tolist()
  assert metrics["int8"]["accuracy"] == pytest.approx(np.mean(predictions == labels))
  saved_model = tf.saved_model.load(path_utils.serving_model_path(trained_model_uri))
  float_predictions = saved_model.signatures[contract.PREDICT_IMAGES_SIGNATURE](
      images=features.to_images(pixels))[contract.PROBABILITIES_OUTPUT].numpy().argmax(axis=1)
  assert metrics["float"]["accuracy"] == pytest.approx(np.mean(float_predictions == labels))
  assert metrics["int8_float_agreement"] == pytest.approx(np.mean(float_predictions == predictions))
  assert metrics["quantization_accuracy_drop"] == pytest.approx(
      metrics["float"]["accuracy"] - metrics["int8"]["accuracy"])
  assert metrics["int8"]["batched_mismatches"] == 0
  assert 0 < metrics["int8"]["latency_ms"]["p50"] <= metrics["int8"]["latency_ms"]["p99"]
  assert metrics["int8"]["batched_images_per_second"] > 0
  assert metrics["baseline"] is None

  # The evaluated bytes are the project's conversion of this model, and what the blessing names.
  with open(tflite_path, "rb") as f:
    tflite_bytes = f.read()
  assert tflite_bytes == int8_tflite.convert_to_int8_tflite(
      path_utils.serving_model_path(trained_model_uri))
  sha256 = hashlib.sha256(tflite_bytes).hexdigest()
  assert metrics["int8"]["tflite_sha256"] == sha256
  assert metrics["int8"]["model_size_bytes"] == len(tflite_bytes)

  assert metrics["blessed"] is True
  assert metrics["reason"].startswith("blessed: int8 accuracy")
  assert metrics["reason"].endswith(f"no baseline (nothing deployed in {destination} yet)")
  assert blessing_files(blessing) == ["BLESSED"]
  assert blessing.get_int_custom_property("blessed") == 1
  assert blessing.get_int_custom_property("current_model_id") == 11
  assert blessing.get_string_custom_property("current_model") == trained_model_uri
  assert blessing.get_string_custom_property(constants.TFLITE_SHA256_PROPERTY) == sha256
  assert (blessing.get_string_custom_property(constants.BLESSING_MESSAGE_PROPERTY) ==
          metrics["reason"])
  assert EVALUATION_FILES <= set(os.listdir(evaluation.uri))

  logged = tensorboard_values(os.path.join(evaluation.uri, constants.TENSORBOARD_DIR))
  assert logged["int8/accuracy"] == pytest.approx(metrics["int8"]["accuracy"])
  assert logged["quantization/accuracy_drop_pp"] == pytest.approx(
      100 * metrics["quantization_accuracy_drop"])
  confusion_png = logged["int8/confusion_matrix"][2]  # [width, height, encoded image]
  assert tf.io.decode_png(confusion_png).shape == (240, 240, 3)


def test_untrained_model_is_not_blessed_and_reason_says_why(tmp_path, examples_dir,
                                                            untrained_model_uri):
  evaluation, blessing = run_executor(tmp_path, examples_dir, untrained_model_uri, **SLICE_PARAMS)

  metrics = read_metrics(evaluation)
  assert metrics["int8"]["accuracy"] < 0.85
  assert metrics["blessed"] is False
  assert metrics["reason"].startswith(
      f"not blessed: FAILED int8 accuracy {metrics['int8']['accuracy']:.4f} < 0.8500")
  assert metrics["reason"].endswith("no baseline (no push destination given)")
  assert blessing_files(blessing) == ["NOT_BLESSED"]
  assert blessing.get_int_custom_property("blessed") == 0
  assert (blessing.get_string_custom_property(constants.BLESSING_MESSAGE_PROPERTY) ==
          metrics["reason"])


def write_empty_split(tmp_path):
  """An Examples dir whose eval split is one valid, empty gzipped TFRecord file."""
  split_dir = tmp_path / "empty_examples" / f"Split-{contract.EVAL_SPLIT}"
  split_dir.mkdir(parents=True)
  with tf.io.TFRecordWriter(str(split_dir / "data_tfrecord-00000-of-00001.gz"), "GZIP"):
    pass
  return str(tmp_path / "empty_examples")


@pytest.mark.parametrize("case, expected_error", [
    ("wrong_signatures", r"lacks the signature 'predict_images' \(it has \['double'\]\)"),
    ("float_only_model", r"does not convert to full-int8 TFLite"),
    ("missing_split", r"have no split 'eval' \(splits: \['train'\]\)"),
    ("split_without_files", r"split 'eval' of examples .* has no files"),
    ("empty_split", r"split 'eval' of examples .* holds no examples"),
])
def test_bad_input_fails_clearly_and_publishes_no_blessing(
    case, expected_error, tmp_path, examples_dir, trained_model_uri, wrong_signature_model_uri,
    float_only_model_uri):
  model_uri, examples_uri, split_names = trained_model_uri, examples_dir, None
  if case == "wrong_signatures":
    model_uri = wrong_signature_model_uri
  elif case == "float_only_model":
    model_uri = float_only_model_uri
  elif case == "missing_split":
    split_names = [contract.TRAIN_SPLIT]
  elif case == "split_without_files":
    examples_uri = str(tmp_path / "no_files")
    os.makedirs(os.path.join(examples_uri, f"Split-{contract.EVAL_SPLIT}"))
  elif case == "empty_split":
    examples_uri = write_empty_split(tmp_path)
  kwargs = {"split_names": split_names} if split_names else {}

  args = executor_args(tmp_path, examples_uri, model_uri, **kwargs)
  with pytest.raises((executor.EvaluatorInputError, int8_tflite.Int8ConversionError),
                     match=expected_error):
    execute(tmp_path, *args)
  [blessing] = args[1][standard_component_specs.BLESSING_KEY]
  assert blessing_files(blessing) == []
  assert not blessing.has_custom_property("blessed")
  [evaluation] = args[1][standard_component_specs.EVALUATION_KEY]
  assert not os.path.exists(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME))
