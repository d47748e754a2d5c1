"""Int8Evaluator executor: judges the full-int8 TFLite model that ships, not only the float model.

Steps: check the inputs (eval split files, SavedModel signatures), convert the candidate (and the
baseline) with the project's one int8 conversion and store the bytes in the evaluation artifact, run
float and int8 inference over the whole eval split in a Beam pipeline, then write the metrics JSON
and TensorBoard logs and publish the blessing. Any bad input raises before a blessing is written,
so a failed execution publishes nothing.
"""

import json
import os
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from absl import logging
import apache_beam as beam
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tfx import types
from tfx.components.evaluator import constants as tfx_evaluator_constants
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import path_utils

from components import contract
from components import errors
from components import features
from components import int8_runtime
from components import int8_tflite
from components.evaluator import blessing as blessing_lib
from components.evaluator import constants
from components.evaluator import metrics as metrics_lib
from components.evaluator import tensorboard_summary

CANDIDATE = "candidate"
BASELINE = "baseline"

# Images per inference batch: large enough that per-call overhead vanishes, small enough to keep a
# worker's memory flat.
BATCH_SIZE = 256

_STATS_FILE = "int8_evaluator_stats.json"
_LATENCY_FILE = "int8_evaluator_latency.json"


class EvaluatorInputError(errors.PipelineInputError):
  """An input cannot be evaluated; the message names the artifact and the problem."""


def _checked_saved_model_path(model: types.Artifact, role: str) -> str:
  """The model's SavedModel dir, after checking it has the image signatures the evaluator calls."""
  path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
  pb_path = os.path.join(path, tf.saved_model.SAVED_MODEL_FILENAME_PB)
  if not fileio.exists(pb_path):
    raise EvaluatorInputError(f"{role} model {model.uri} (id {model.id}) has no SavedModel: "
                              f"{pb_path} does not exist")
  saved_model = saved_model_pb2.SavedModel()
  with fileio.open(pb_path, "rb") as f:
    saved_model.ParseFromString(f.read())
  signatures = saved_model.meta_graphs[0].signature_def
  public_signatures = sorted(name for name in signatures if not name.startswith("__"))
  for name in (contract.PREDICT_IMAGES_SIGNATURE, contract.SINGLE_IMAGE_SIGNATURE):
    if name not in signatures:
      raise EvaluatorInputError(
          f"{role} model {path} lacks the signature {name!r} (it has {public_signatures}); "
          "the evaluator needs the signatures declared in components/features.py")
    signature = signatures[name]
    if (list(signature.inputs) != [contract.IMAGES_INPUT] or
        contract.PROBABILITIES_OUTPUT not in signature.outputs):
      raise EvaluatorInputError(
          f"{role} model {path}: signature {name!r} maps {sorted(signature.inputs)} -> "
          f"{sorted(signature.outputs)}, expected {contract.IMAGES_INPUT!r} -> "
          f"{contract.PROBABILITIES_OUTPUT!r}")
  return path


def _split_file_pattern(examples: types.Artifact, split: str) -> str:
  """Glob of the split's TFRecord files, after checking the split exists and has files."""
  split_names = artifact_utils.decode_split_names(examples.split_names)
  if split not in split_names:
    raise EvaluatorInputError(f"examples {examples.uri} have no split {split!r} "
                              f"(splits: {split_names})")
  pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
  if not fileio.glob(pattern):
    raise EvaluatorInputError(
        f"split {split!r} of examples {examples.uri} has no files ({pattern})")
  return pattern


class _Int8Runner:
  """A model's int8 bytes behind two interpreters: batch-1 (as shipped) and batched (throughput)."""

  def __init__(self, model_content: bytes):
    self.single = int8_runtime.Int8Classifier(model_content, num_threads=1)
    self.batched = int8_runtime.Int8Classifier(model_content, num_threads=os.cpu_count())

  def run(self, pixels: np.ndarray) -> Tuple[np.ndarray, List[float], float, int]:
    """Returns (probabilities from batch-1 runs, per-image seconds, batched seconds, mismatches).

    Metrics use the batch-1 outputs, i.e. exactly what the device computes; `mismatches` counts
    images whose batched output differs, which must stay 0 for batched serving to be trusted.
    """
    quantized = self.single.quantize_pixels(pixels)
    start = time.perf_counter()
    batched_outputs = self.batched.invoke_quantized(quantized)
    batched_seconds = time.perf_counter() - start
    single_outputs = np.empty_like(batched_outputs)
    latencies = []
    for i in range(len(quantized)):
      start = time.perf_counter()
      single_outputs[i] = self.single.invoke_quantized(quantized[i:i + 1])[0]
      latencies.append(time.perf_counter() - start)
    mismatches = int(np.any(single_outputs != batched_outputs, axis=1).sum())
    return self.single.dequantize(single_outputs), latencies, batched_seconds, mismatches


class _EvaluateBatchFn(beam.DoFn):
  """Runs the float SavedModel and each int8 model on a batch of serialized tf.Examples.

  Emits one stats dict per batch (main output) and (model, seconds) per image on LATENCY.
  """
  LATENCY = "latency"

  def __init__(self, saved_model_path: str, tflite_paths: Dict[str, str]):
    self._saved_model_path = saved_model_path
    self._tflite_paths = tflite_paths

  def setup(self):
    self._predict_images = tf.saved_model.load(
        self._saved_model_path).signatures[contract.PREDICT_IMAGES_SIGNATURE]
    self._int8_runners = {}
    for name, path in self._tflite_paths.items():
      with fileio.open(path, "rb") as f:
        self._int8_runners[name] = _Int8Runner(f.read())

  def process(self, serialized: List[bytes]) -> Iterator[Union[Dict[str, Any],
                                                              beam.pvalue.TaggedOutput]]:
    parsed = tf.io.parse_example(serialized, features.FEATURE_SPEC)
    pixels = parsed[contract.IMAGE_KEY].numpy()
    labels = parsed[contract.LABEL_KEY].numpy()
    if labels.min() < 0 or labels.max() >= contract.NUM_CLASSES:
      raise ValueError(f"labels outside 0-{contract.NUM_CLASSES - 1}: {sorted(set(labels))}")
    float_probabilities = self._predict_images(**{
        contract.IMAGES_INPUT: features.to_images(pixels)})[contract.PROBABILITIES_OUTPUT].numpy()
    stats = {"count": len(labels), "float": metrics_lib.batch_stats(labels, float_probabilities)}
    for name, runner in self._int8_runners.items():
      probabilities, latencies, batched_seconds, mismatches = runner.run(pixels)
      stats[name] = {**metrics_lib.batch_stats(labels, probabilities),
                     "batched_seconds": batched_seconds, "batched_mismatches": mismatches}
      if name == CANDIDATE:
        stats["int8_float_agreements"] = int(
            (probabilities.argmax(axis=1) == float_probabilities.argmax(axis=1)).sum())
      for seconds in latencies:
        yield beam.pvalue.TaggedOutput(self.LATENCY, (name, seconds))
    yield stats


class _SumStatsFn(beam.CombineFn):
  """Adds the per-batch stats dicts (see metrics.add_stats)."""

  def create_accumulator(self) -> Dict[str, Any]:
    return {}

  def add_input(self, accumulator, stats):
    return metrics_lib.add_stats(accumulator, stats)

  def merge_accumulators(self, accumulators):
    return metrics_lib.sum_stats(accumulators)

  def extract_output(self, accumulator):
    return accumulator


def _to_json(value: Any) -> str:
  return json.dumps(value, default=lambda o: o.tolist())  # numpy arrays and scalars


def _read_json_lines(path: str) -> List[Any]:
  with fileio.open(path, "r") as f:
    return [json.loads(line) for line in f.read().splitlines() if line]


def _write_json_line(pcoll: beam.PCollection, path: str, label: str) -> None:
  _ = (pcoll | f"{label}ToJson" >> beam.Map(_to_json)
       | f"Write{label}" >> beam.io.WriteToText(path, shard_name_template="", num_shards=1))


def _int8_metrics(model_stats: Dict[str, Any], num_examples: int, model_content: bytes,
                  tflite_file: str, latency_quantiles: List[float]) -> Dict[str, Any]:
  return {
      **metrics_lib.classification_metrics(model_stats["confusion_matrix"],
                                           model_stats["log_loss_sum"]),
      "tflite_file": tflite_file,
      "tflite_sha256": int8_tflite.model_sha256(model_content),
      "model_size_bytes": len(model_content),
      "latency_ms": {"p50": 1000 * latency_quantiles[50], "p99": 1000 * latency_quantiles[99]},
      "batched_images_per_second": num_examples / model_stats["batched_seconds"],
      "batch_size": BATCH_SIZE,
      "batched_mismatches": model_stats["batched_mismatches"],
  }


def _model_info(model: types.Artifact, saved_model_path: str) -> Dict[str, Any]:
  return {"uri": model.uri, "id": model.id, "saved_model_path": saved_model_path}


class Executor(base_beam_executor.BaseBeamExecutor):
  """Evaluates the float model and its int8 TFLite conversion and blesses the int8 model."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
    model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
    baseline_models = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
    if len(baseline_models) > 1:
      raise EvaluatorInputError(f"expected at most one baseline model, got {len(baseline_models)}")
    baseline_model: Optional[types.Artifact] = baseline_models[0] if baseline_models else None
    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    thresholds = blessing_lib.Thresholds(
        min_int8_accuracy=float(exec_properties[constants.MIN_INT8_ACCURACY_KEY]),
        max_quantization_drop=float(exec_properties[constants.MAX_QUANTIZATION_DROP_KEY]),
        baseline_tolerance=float(exec_properties[constants.BASELINE_TOLERANCE_KEY]))
    split = exec_properties[constants.EVAL_SPLIT_KEY]

    file_pattern = _split_file_pattern(examples, split)
    saved_model_path = _checked_saved_model_path(model, CANDIDATE)
    models = {CANDIDATE: (model, saved_model_path, constants.CANDIDATE_TFLITE_FILE)}
    # A re-run with unchanged inputs resolves the candidate itself as the last blessed model (same
    # artifact, or a retrained model with the same int8 bytes): comparing it with itself would
    # prove nothing, so the comparison is skipped and the reason says so.
    baseline_skipped = None
    if baseline_model is not None and baseline_model.id == model.id:
      baseline_skipped = f"baseline skipped: it is the candidate itself (model id {model.id})"
      baseline_model = None
    if baseline_model is not None:
      models[BASELINE] = (baseline_model, _checked_saved_model_path(baseline_model, BASELINE),
                          constants.BASELINE_TFLITE_FILE)

    tflite_contents = {}
    for name, (_, path, _) in models.items():
      logging.info("Converting the %s model %s to full-int8 TFLite.", name, path)
      tflite_contents[name] = int8_tflite.convert_to_int8_tflite(path)
    if baseline_model is not None and (int8_tflite.model_sha256(tflite_contents[BASELINE]) ==
                                       int8_tflite.model_sha256(tflite_contents[CANDIDATE])):
      baseline_skipped = (f"baseline skipped: the last blessed model (id {baseline_model.id}) has "
                          "the candidate's int8 bytes (same sha256)")
      baseline_model = None
      del models[BASELINE], tflite_contents[BASELINE]
    if baseline_skipped:
      logging.info("Int8Evaluator: %s", baseline_skipped)
    tflite_paths = {}
    for name, (_, _, tflite_file) in models.items():
      tflite_paths[name] = os.path.join(evaluation.uri, tflite_file)
      io_utils.write_bytes_file(tflite_paths[name], tflite_contents[name])

    stats, latency_quantiles = self._run_inference(file_pattern, saved_model_path, tflite_paths)
    num_examples = stats.get("count", 0)
    if num_examples == 0:
      raise EvaluatorInputError(f"split {split!r} of examples {examples.uri} holds no examples")

    int8_metrics = _int8_metrics(stats[CANDIDATE], num_examples, tflite_contents[CANDIDATE],
                                 constants.CANDIDATE_TFLITE_FILE, latency_quantiles[CANDIDATE])
    float_metrics = metrics_lib.classification_metrics(stats["float"]["confusion_matrix"],
                                                       stats["float"]["log_loss_sum"])
    quantization_drop = (float_metrics["correct"] - int8_metrics["correct"]) / num_examples
    baseline_metrics = None
    if baseline_model is not None:
      baseline_metrics = {
          "model": _model_info(baseline_model, models[BASELINE][1]),
          "int8": _int8_metrics(stats[BASELINE], num_examples, tflite_contents[BASELINE],
                                constants.BASELINE_TFLITE_FILE, latency_quantiles[BASELINE]),
      }
    blessed, reason = blessing_lib.decide(
        int8_metrics["accuracy"], quantization_drop,
        baseline_metrics["int8"]["accuracy"] if baseline_metrics else None, thresholds,
        no_baseline_note=baseline_skipped or blessing_lib.NO_BASELINE_NOTE)
    logging.info("Int8Evaluator: %s", reason)

    metrics = {
        "eval_split": split,
        "examples_uri": examples.uri,
        "num_examples": num_examples,
        "model": _model_info(model, saved_model_path),
        "int8": int8_metrics,
        "float": float_metrics,
        "int8_float_agreement": stats["int8_float_agreements"] / num_examples,
        "quantization_accuracy_drop": quantization_drop,
        "baseline": baseline_metrics,
        "baseline_skipped": baseline_skipped,
        "thresholds": {
            constants.MIN_INT8_ACCURACY_KEY: thresholds.min_int8_accuracy,
            constants.MAX_QUANTIZATION_DROP_KEY: thresholds.max_quantization_drop,
            constants.BASELINE_TOLERANCE_KEY: thresholds.baseline_tolerance,
        },
        "blessed": blessed,
        "reason": reason,
    }
    io_utils.write_string_file(os.path.join(evaluation.uri, constants.METRICS_FILE),
                               json.dumps(metrics, indent=2))
    tensorboard_summary.write(os.path.join(evaluation.uri, constants.TENSORBOARD_DIR), metrics)
    self._publish_blessing(blessing, model, baseline_model, blessed, reason,
                           int8_metrics["tflite_sha256"])

  def _run_inference(self, file_pattern: str, saved_model_path: str, tflite_paths: Dict[str, str]
                    ) -> Tuple[Dict[str, Any], Dict[str, List[float]]]:
    """Runs the Beam pipeline; returns the summed stats and 101 latency quantiles per int8 model."""
    output_dir = self._get_tmp_dir()
    stats_path = os.path.join(output_dir, _STATS_FILE)
    latency_path = os.path.join(output_dir, _LATENCY_FILE)
    with self._make_beam_pipeline() as pipeline:
      results = (
          pipeline
          | "ReadExamples" >> beam.io.ReadFromTFRecord(file_pattern)
          | "Batch" >> beam.BatchElements(min_batch_size=BATCH_SIZE, max_batch_size=BATCH_SIZE)
          | "Evaluate" >> beam.ParDo(_EvaluateBatchFn(saved_model_path, tflite_paths)).with_outputs(
              _EvaluateBatchFn.LATENCY, main="stats"))
      _write_json_line(results.stats | "SumStats" >> beam.CombineGlobally(_SumStatsFn()),
                       stats_path, "Stats")
      _write_json_line(
          results[_EvaluateBatchFn.LATENCY]
          | "LatencyQuantiles" >> beam.ApproximateQuantiles.PerKey(num_quantiles=101),
          latency_path, "Latency")
    [stats] = _read_json_lines(stats_path)
    latency_quantiles = dict(_read_json_lines(latency_path))
    return stats, latency_quantiles

  @staticmethod
  def _publish_blessing(blessing: types.Artifact, model: types.Artifact,
                        baseline_model: Optional[types.Artifact], blessed: bool, reason: str,
                        tflite_sha256: str) -> None:
    """Sets the properties TFX's Evaluator sets (LatestBlessedModelStrategy and Pusher read
    `blessed` and `current_model_id`) plus the sha256 the pusher must ship, and the marker file."""
    tfx_constants = tfx_evaluator_constants
    blessing.set_string_custom_property(tfx_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                        model.uri)
    blessing.set_int_custom_property(tfx_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if baseline_model is not None:
      blessing.set_string_custom_property(tfx_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                          baseline_model.uri)
      blessing.set_int_custom_property(tfx_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY,
                                       baseline_model.id)
    blessing.set_string_custom_property(constants.TFLITE_SHA256_PROPERTY, tflite_sha256)
    blessing.set_string_custom_property(constants.REASON_PROPERTY, reason)
    marker = tfx_constants.BLESSED_FILE_NAME if blessed else tfx_constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, marker), "")
    blessing.set_int_custom_property(
        tfx_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        tfx_constants.BLESSED_VALUE if blessed else tfx_constants.NOT_BLESSED_VALUE)
    logging.info("Blessing (%s) written to %s.", marker, blessing.uri)
