"""Int8Evaluator executor: judges the full-int8 TFLite model that ships, not only the float model.

Steps: check the inputs (eval split files, SavedModel signatures), convert the candidate (and the
baseline) with the project's one int8 conversion and store the bytes in the evaluation artifact, run
float and int8 inference over the whole eval split in a Beam pipeline, then write the metrics JSON
and TensorBoard logs and publish the blessing. Any bad input raises before a blessing is written,
so a failed execution publishes nothing.
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

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

from components.evaluator import blessing as blessing_lib
from components.evaluator import constants
from components.evaluator import metrics as metrics_lib
from components.evaluator import tensorboard_summary
from core import contract
from core import errors
from core import evaluation_metrics
from core import features
from core import hashing
from core import int8_runtime
from core import int8_tflite
from core import latency

CANDIDATE = "candidate"
BASELINE = "baseline"

# Images per inference batch: large enough that per-call overhead vanishes, small enough to keep a
# worker's memory flat.
BATCH_SIZE = 256

_STATS_FILE = "int8_evaluator_stats.json"


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
          "the evaluator needs the signatures declared in core/contract.py")
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

  def run(self, pixels: np.ndarray) -> Tuple[np.ndarray, Dict[str, Any]]:
    """(probabilities from batch-1 runs, their stats: batch-1 latencies (core.latency's
    measurement), batched seconds and mismatches).

    Metrics use the batch-1 outputs, i.e. exactly what the device computes; `batched_mismatches`
    counts images whose batched output differs, which must stay 0 for batched serving to be trusted.
    """
    quantized = self.single.quantize_pixels(pixels)
    start = time.perf_counter()
    batched_outputs = self.batched.invoke_quantized(quantized)
    batched_seconds = time.perf_counter() - start
    single_outputs, seconds = latency.time_single_images(self.single.invoke_quantized, quantized)
    mismatches = int(np.any(single_outputs != batched_outputs, axis=1).sum())
    return self.single.dequantize(single_outputs), {
        "latency_seconds": seconds, "batched_seconds": batched_seconds,
        "batched_mismatches": mismatches}


class _EvaluateBatchFn(beam.DoFn):
  """Runs the float SavedModel and each int8 model on a batch of serialized tf.Examples; emits one
  stats dict per batch (sums and lists that add up across batches, see metrics.add_stats)."""

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

  def process(self, serialized: List[bytes]) -> Iterator[Dict[str, Any]]:
    parsed = tf.io.parse_example(serialized, features.FEATURE_SPEC)
    pixels = parsed[contract.IMAGE_KEY].numpy()
    labels = parsed[contract.LABEL_KEY].numpy()
    if labels.min() < 0 or labels.max() >= contract.NUM_CLASSES:
      raise ValueError(f"labels outside 0-{contract.NUM_CLASSES - 1}: {sorted(set(labels))}")
    float_probabilities = self._predict_images(**{
        contract.IMAGES_INPUT: features.to_images(pixels)})[contract.PROBABILITIES_OUTPUT].numpy()
    stats = {"count": len(labels), "float": metrics_lib.batch_stats(labels, float_probabilities)}
    for name, runner in self._int8_runners.items():
      probabilities, run_stats = runner.run(pixels)
      stats[name] = {**metrics_lib.batch_stats(labels, probabilities), **run_stats}
      if name == CANDIDATE:
        stats["int8_float_agreements"] = int(
            (probabilities.argmax(axis=1) == float_probabilities.argmax(axis=1)).sum())
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


@dataclasses.dataclass(frozen=True)
class _Judged:
  """A model to run: its artifact, SavedModel, int8 bytes and their file in the evaluation."""
  artifact: types.Artifact
  saved_model_path: str
  tflite_content: bytes
  tflite_file: str

  def info(self) -> evaluation_metrics.ModelInfo:
    return evaluation_metrics.ModelInfo(uri=self.artifact.uri, id=self.artifact.id,
                                        saved_model_path=self.saved_model_path)

  def int8_metrics(self, stats: Dict[str, Any], num_examples: int
                   ) -> evaluation_metrics.Int8Metrics:
    return evaluation_metrics.Int8Metrics(
        **metrics_lib.classification_metrics(stats["confusion_matrix"], stats["log_loss_sum"]),
        tflite_file=self.tflite_file,
        tflite_sha256=hashing.sha256_bytes(self.tflite_content),
        model_size_bytes=len(self.tflite_content),
        latency_ms=latency.quantiles_ms(stats["latency_seconds"]),
        batched_images_per_second=num_examples / stats["batched_seconds"],
        batch_size=BATCH_SIZE,
        batched_mismatches=stats["batched_mismatches"])


def _judged(model: types.Artifact, role: str, tflite_file: str, io_dtype: str) -> _Judged:
  path = _checked_saved_model_path(model, role)
  logging.info("Converting the %s model %s to full-int8 TFLite with %s input and output.", role,
               path, io_dtype)
  return _Judged(model, path, int8_tflite.convert_to_int8_tflite(path, io_dtype=io_dtype),
                 tflite_file)


def _models_to_judge(model: types.Artifact, baseline_model: Optional[types.Artifact],
                     io_dtype: str) -> Tuple[Dict[str, _Judged], Optional[str]]:
  """({CANDIDATE: ..., BASELINE: ... when compared}, why the baseline was skipped or None).

  A re-run with unchanged inputs resolves the candidate itself as the last blessed model (same
  artifact, or a retrained model with the same int8 bytes): comparing it with itself would prove
  nothing, so the comparison is skipped and the reason says so.
  """
  models = {CANDIDATE: _judged(model, CANDIDATE, constants.CANDIDATE_TFLITE_FILE, io_dtype)}
  if baseline_model is None:
    return models, None
  if baseline_model.id == model.id:
    return models, f"baseline skipped: it is the candidate itself (model id {model.id})"
  baseline = _judged(baseline_model, BASELINE, constants.BASELINE_TFLITE_FILE, io_dtype)
  if baseline.tflite_content == models[CANDIDATE].tflite_content:
    return models, (f"baseline skipped: the last blessed model (id {baseline_model.id}) has the "
                    "candidate's int8 bytes (same sha256)")
  return {**models, BASELINE: baseline}, None


def _evaluation(examples: types.Artifact, split: str, models: Dict[str, _Judged],
                stats: Dict[str, Any], thresholds: blessing_lib.Thresholds,
                baseline_skipped: Optional[str]) -> evaluation_metrics.EvaluationMetrics:
  """The metrics and the verdict from the summed stats of the inference pipeline."""
  num_examples = stats["count"]
  candidate = models[CANDIDATE]
  int8 = candidate.int8_metrics(stats[CANDIDATE], num_examples)
  float_model = evaluation_metrics.ClassificationMetrics(**metrics_lib.classification_metrics(
      stats["float"]["confusion_matrix"], stats["float"]["log_loss_sum"]))
  quantization_drop = (float_model.correct - int8.correct) / num_examples
  baseline = None
  if BASELINE in models:
    baseline = evaluation_metrics.BaselineMetrics(
        model=models[BASELINE].info(),
        int8=models[BASELINE].int8_metrics(stats[BASELINE], num_examples))
  blessed, reason = blessing_lib.decide(
      int8.accuracy, quantization_drop, baseline.int8.accuracy if baseline else None, thresholds,
      no_baseline_note=baseline_skipped or blessing_lib.NO_BASELINE_NOTE)
  logging.info("Int8Evaluator: %s", reason)
  return evaluation_metrics.EvaluationMetrics(
      eval_split=split, examples_uri=examples.uri, num_examples=num_examples,
      model=candidate.info(), int8=int8, float_model=float_model,
      int8_float_agreement=stats["int8_float_agreements"] / num_examples,
      quantization_accuracy_drop=quantization_drop, baseline=baseline,
      baseline_skipped=baseline_skipped, thresholds=dataclasses.asdict(thresholds),
      blessed=blessed, reason=reason)


def _thresholds(exec_properties: Dict[str, Any]) -> blessing_lib.Thresholds:
  return blessing_lib.Thresholds(
      min_int8_accuracy=float(exec_properties[constants.MIN_INT8_ACCURACY_KEY]),
      max_quantization_drop=float(exec_properties[constants.MAX_QUANTIZATION_DROP_KEY]),
      baseline_tolerance=float(exec_properties[constants.BASELINE_TOLERANCE_KEY]))


def _baseline_model(input_dict: Dict[str, List[types.Artifact]]) -> Optional[types.Artifact]:
  baseline_models = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
  if len(baseline_models) > 1:
    raise EvaluatorInputError(f"expected at most one baseline model, got {len(baseline_models)}")
  return baseline_models[0] if baseline_models else None


class Executor(base_beam_executor.BaseBeamExecutor):
  """Evaluates the float model and its int8 TFLite conversion and blesses the int8 model."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
    model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    thresholds = _thresholds(exec_properties)
    split = exec_properties[constants.EVAL_SPLIT_KEY]

    io_dtype = contract.check_io_dtype(
        exec_properties.get(constants.IO_DTYPE_KEY) or contract.DEFAULT_IO_DTYPE)

    file_pattern = _split_file_pattern(examples, split)
    models, baseline_skipped = _models_to_judge(model, _baseline_model(input_dict), io_dtype)
    if baseline_skipped:
      logging.info("Int8Evaluator: %s", baseline_skipped)
    tflite_paths = {}
    for name, judged in models.items():
      tflite_paths[name] = os.path.join(evaluation.uri, judged.tflite_file)
      io_utils.write_bytes_file(tflite_paths[name], judged.tflite_content)

    stats = self._run_inference(file_pattern, models[CANDIDATE].saved_model_path, tflite_paths)
    if not stats.get("count"):
      raise EvaluatorInputError(f"split {split!r} of examples {examples.uri} holds no examples")
    metrics = _evaluation(examples, split, models, stats, thresholds, baseline_skipped)
    io_utils.write_bytes_file(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME),
                              metrics.to_json())
    tensorboard_summary.write(os.path.join(evaluation.uri, constants.TENSORBOARD_DIR), metrics)
    self._publish_blessing(blessing, model, models.get(BASELINE), metrics)

  def _run_inference(self, file_pattern: str, saved_model_path: str,
                     tflite_paths: Dict[str, str]) -> Dict[str, Any]:
    """Runs the Beam pipeline; returns the stats summed over every batch ({} for no examples)."""
    stats_path = os.path.join(self._get_tmp_dir(), _STATS_FILE)
    with self._make_beam_pipeline() as pipeline:
      _ = (pipeline
           | "ReadExamples" >> beam.io.ReadFromTFRecord(file_pattern)
           | "Batch" >> beam.BatchElements(min_batch_size=BATCH_SIZE, max_batch_size=BATCH_SIZE)
           | "Evaluate" >> beam.ParDo(_EvaluateBatchFn(saved_model_path, tflite_paths))
           | "SumStats" >> beam.CombineGlobally(_SumStatsFn())
           | "ToJson" >> beam.Map(lambda stats: json.dumps(stats, default=lambda o: o.tolist()))
           | "Write" >> beam.io.WriteToText(stats_path, shard_name_template="", num_shards=1))
    with fileio.open(stats_path, "r") as f:
      return json.loads(f.read())

  @staticmethod
  def _publish_blessing(blessing: types.Artifact, model: types.Artifact,
                        baseline: Optional[_Judged],
                        metrics: evaluation_metrics.EvaluationMetrics) -> None:
    """Sets the properties TFX's Evaluator sets (LatestBlessedModelStrategy and Pusher read
    `blessed` and `current_model_id`) plus the sha256 the pusher must ship, and the marker file."""
    tfx_constants = tfx_evaluator_constants
    blessing.set_string_custom_property(tfx_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                        model.uri)
    blessing.set_int_custom_property(tfx_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if baseline is not None:
      blessing.set_string_custom_property(tfx_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                          baseline.artifact.uri)
      blessing.set_int_custom_property(tfx_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY,
                                       baseline.artifact.id)
    blessing.set_string_custom_property(constants.TFLITE_SHA256_PROPERTY,
                                        metrics.int8.tflite_sha256)
    blessing.set_string_custom_property(constants.BLESSING_MESSAGE_PROPERTY, metrics.reason)
    marker = (tfx_constants.BLESSED_FILE_NAME if metrics.blessed else
              tfx_constants.NOT_BLESSED_FILE_NAME)
    io_utils.write_string_file(os.path.join(blessing.uri, marker), "")
    blessing.set_int_custom_property(
        tfx_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        tfx_constants.BLESSED_VALUE if metrics.blessed else tfx_constants.NOT_BLESSED_VALUE)
    logging.info("Blessing (%s) written to %s.", marker, blessing.uri)
