"""Int8Evaluator executor: judges the full-int8 TFLite model that ships, not only the float model.

Steps: check the inputs (eval split files, SavedModel signatures), convert the candidate with the
project's one int8 conversion, find the baseline (the newest verified version in the push
destination, deployed.py: what devices run today) and store both int8 models in the evaluation
artifact, run float and int8 inference over the whole eval split in a Beam pipeline (the deployed
bytes with the same runtime as the candidate's), then write the metrics JSON and TensorBoard logs
and publish the blessing. Any bad input raises before a blessing is written, so a failed execution
publishes nothing.
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
from components.evaluator import deployed as deployed_lib
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
  """Int8 bytes to run and their file in the evaluation artifact."""
  tflite_content: bytes
  tflite_file: str

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


@dataclasses.dataclass(frozen=True)
class _Baseline:
  """The deployed version the candidate is compared with, or why there is no comparison:
  `skipped` when a version is deployed but not compared, `absent` when none qualifies."""
  deployed: Optional[deployed_lib.DeployedModel] = None
  skipped: Optional[str] = None
  absent: Optional[str] = None

  @property
  def note(self) -> Optional[str]:
    """The sentence the verdict ends with when nothing is compared."""
    return self.skipped or self.absent

  def judged(self) -> Optional[_Judged]:
    if self.deployed is None:
      return None
    return _Judged(self.deployed.tflite_content, constants.BASELINE_TFLITE_FILE)


def _baseline(destination: Optional[str], candidate_tflite: bytes) -> _Baseline:
  """The newest verified version under `destination` (deployed.py), unless it holds the
  candidate's own int8 bytes: a re-run with unchanged inputs would compare a model with itself,
  which proves nothing, so the comparison is skipped and the verdict says so."""
  if not destination:
    return _Baseline(absent="no baseline (no push destination given)")
  deployed, passed_over = deployed_lib.newest_verified(destination)
  if deployed is None:
    why = (f"no verified version in {destination}: " + "; ".join(passed_over) if passed_over else
           f"nothing deployed in {destination} yet")
    return _Baseline(absent=f"no baseline ({why})")
  if deployed.tflite_content == candidate_tflite:
    return _Baseline(skipped=f"baseline skipped: identical to deployed version "
                     f"{deployed.version} (same int8 sha256)")
  return _Baseline(deployed=deployed)


def _evaluation(examples: types.Artifact, split: str, candidate: _Judged,
                model_info: evaluation_metrics.ModelInfo, baseline: _Baseline,
                stats: Dict[str, Any], thresholds: blessing_lib.Thresholds
                ) -> evaluation_metrics.EvaluationMetrics:
  """The metrics and the verdict from the summed stats of the inference pipeline."""
  num_examples = stats["count"]
  int8 = candidate.int8_metrics(stats[CANDIDATE], num_examples)
  float_model = evaluation_metrics.ClassificationMetrics(**metrics_lib.classification_metrics(
      stats["float"]["confusion_matrix"], stats["float"]["log_loss_sum"]))
  quantization_drop = (float_model.correct - int8.correct) / num_examples
  baseline_metrics = None
  if baseline.deployed is not None:
    baseline_metrics = evaluation_metrics.BaselineMetrics(
        deployed=baseline.deployed.describe(),
        int8=baseline.judged().int8_metrics(stats[BASELINE], num_examples))
  blessed, reason = blessing_lib.decide(
      int8.accuracy, quantization_drop,
      baseline_metrics.int8.accuracy if baseline_metrics else None, thresholds,
      baseline_name=(f"deployed version {baseline_metrics.deployed.version}" if baseline_metrics
                     else None),
      no_baseline_note=baseline.note)
  logging.info("Int8Evaluator: %s", reason)
  return evaluation_metrics.EvaluationMetrics(
      eval_split=split, examples_uri=examples.uri, num_examples=num_examples,
      model=model_info, int8=int8, float_model=float_model,
      int8_float_agreement=stats["int8_float_agreements"] / num_examples,
      quantization_accuracy_drop=quantization_drop, baseline=baseline_metrics,
      baseline_skipped=baseline.skipped, thresholds=dataclasses.asdict(thresholds),
      blessed=blessed, reason=reason)


def _thresholds(exec_properties: Dict[str, Any]) -> blessing_lib.Thresholds:
  return blessing_lib.Thresholds(
      min_int8_accuracy=float(exec_properties[constants.MIN_INT8_ACCURACY_KEY]),
      max_quantization_drop=float(exec_properties[constants.MAX_QUANTIZATION_DROP_KEY]),
      baseline_tolerance=float(exec_properties[constants.BASELINE_TOLERANCE_KEY]))


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

    file_pattern = _split_file_pattern(examples, split)
    saved_model_path = _checked_saved_model_path(model, CANDIDATE)
    logging.info("Converting the candidate model %s to full-int8 TFLite.", saved_model_path)
    candidate = _Judged(int8_tflite.convert_to_int8_tflite(saved_model_path),
                        constants.CANDIDATE_TFLITE_FILE)
    baseline = _baseline(exec_properties.get(constants.PUSH_DESTINATION_KEY),
                         candidate.tflite_content)
    if baseline.note:
      logging.info("Int8Evaluator: %s", baseline.note)
    judged = {CANDIDATE: candidate}
    if baseline.deployed is not None:
      judged[BASELINE] = baseline.judged()
    tflite_paths = {}
    for name, model_bytes in judged.items():
      tflite_paths[name] = os.path.join(evaluation.uri, model_bytes.tflite_file)
      io_utils.write_bytes_file(tflite_paths[name], model_bytes.tflite_content)

    stats = self._run_inference(file_pattern, saved_model_path, tflite_paths)
    if not stats.get("count"):
      raise EvaluatorInputError(f"split {split!r} of examples {examples.uri} holds no examples")
    model_info = evaluation_metrics.ModelInfo(uri=model.uri, id=model.id,
                                              saved_model_path=saved_model_path)
    metrics = _evaluation(examples, split, candidate, model_info, baseline, stats, thresholds)
    io_utils.write_bytes_file(os.path.join(evaluation.uri, evaluation_metrics.FILE_NAME),
                              metrics.to_json())
    tensorboard_summary.write(os.path.join(evaluation.uri, constants.TENSORBOARD_DIR), metrics)
    self._publish_blessing(blessing, model, metrics)

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
                        metrics: evaluation_metrics.EvaluationMetrics) -> None:
    """Sets the properties TFX's Evaluator sets (the Pusher reads `blessed`), the deployed
    version compared with, the sha256 the pusher must ship, and the marker file."""
    tfx_constants = tfx_evaluator_constants
    blessing.set_string_custom_property(tfx_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                        model.uri)
    blessing.set_int_custom_property(tfx_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if metrics.baseline is not None:
      deployed = metrics.baseline.deployed
      blessing.set_string_custom_property(tfx_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                          os.path.join(deployed.destination, str(deployed.version)))
      blessing.set_int_custom_property(constants.BASELINE_VERSION_PROPERTY, deployed.version)
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
