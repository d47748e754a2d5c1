"""metrics.json, the Int8Evaluator's verdict file: its schema, and the one way to write and read it.

The evaluator writes it into its ModelEvaluation artifact; the pusher copies it into model.json,
and the run summary, the run report, the evaluator's TensorBoard summary and serving's metadata
read it. Accuracies, drops and agreements are fractions in [0, 1]; latencies are milliseconds;
the confusion matrix has rows = true digit, columns = predicted digit. pydantic checks every field
on read and write. No TensorFlow import: callers move the bytes with the filesystem they use.
"""

from typing import ClassVar, Optional

import pydantic

from core import contract
from core import payload

FILE_NAME = "metrics.json"

Fraction = pydantic.confloat(ge=0.0, le=1.0)
PerClass = pydantic.conlist(Fraction, min_length=contract.NUM_CLASSES,
                            max_length=contract.NUM_CLASSES)
Sha256 = pydantic.constr(pattern=r"^[0-9a-f]{64}$")
# Rows = true digit, columns = predicted digit.
ConfusionMatrix = pydantic.conlist(
    pydantic.conlist(pydantic.NonNegativeInt, min_length=contract.NUM_CLASSES,
                     max_length=contract.NUM_CLASSES),
    min_length=contract.NUM_CLASSES, max_length=contract.NUM_CLASSES)


class ClassificationMetrics(payload.Schema):
  """The metrics of one model's predictions on the eval split (components/evaluator/metrics.py)."""
  accuracy: Fraction
  correct: pydantic.NonNegativeInt
  log_loss: pydantic.NonNegativeFloat  # Mean over examples, natural log.
  precision: PerClass
  recall: PerClass
  confusion_matrix: ConfusionMatrix


class LatencyMs(payload.Schema):
  """Batch-1 latency quantiles, milliseconds (core.latency: one definition for the project)."""
  p50: pydantic.NonNegativeFloat
  p99: pydantic.NonNegativeFloat


class Int8Metrics(ClassificationMetrics):
  """The full-int8 TFLite model's metrics, at batch 1 as the device runs it, and its bytes."""
  tflite_file: str  # Its name inside the ModelEvaluation artifact.
  tflite_sha256: Sha256
  model_size_bytes: pydantic.PositiveInt
  latency_ms: LatencyMs
  batched_images_per_second: pydantic.NonNegativeFloat
  batch_size: pydantic.PositiveInt
  batched_mismatches: pydantic.NonNegativeInt  # Images whose batched output differs: must be 0.


class ModelInfo(payload.Schema):
  """The candidate: its Model artifact's URI, ML Metadata id and SavedModel directory."""
  uri: str
  id: int
  saved_model_path: str


class DeployedVersion(payload.Schema):
  """A version the pusher published (DEST/<N>/, core/versions.py), as the evaluator verified it:
  its model.json read and checked (core/push_manifest.py), its model.tflite's sha256 equal to the
  one model.json lists."""
  destination: str  # The push destination DEST.
  version: pydantic.PositiveInt
  tflite_sha256: Sha256  # Of DEST/<N>/model.tflite.
  source_model_uri: str  # The Trainer's Model it was converted from (its model.json says).


class BaselineMetrics(payload.Schema):
  """The deployed version the candidate was compared with: its int8 bytes run on the same
  examples with the same runtime as the candidate's."""
  deployed: Optional[DeployedVersion] = None
  # Files written before the baseline was the deployed version name the last blessed model in ML
  # Metadata instead; they are still read (a pushed version's model.json holds its metrics.json).
  model: Optional[ModelInfo] = None
  int8: Int8Metrics

  @pydantic.model_validator(mode="after")
  def _names_one_baseline(self) -> "BaselineMetrics":
    if (self.deployed is None) == (self.model is None):
      raise ValueError("a baseline is either 'deployed' (a pushed version) or, in older files, "
                       "'model'")
    return self


class Thresholds(payload.Schema):
  """The blessing rules that applied (components/evaluator/blessing.py)."""
  min_int8_accuracy: Fraction
  max_quantization_drop: Fraction
  baseline_tolerance: Fraction


class EvaluationMetrics(payload.PayloadFile):
  """Everything the evaluator measured and decided about one candidate model."""
  DESCRIPTION: ClassVar[str] = "evaluation"
  eval_split: str
  examples_uri: str
  num_examples: pydantic.PositiveInt
  model: ModelInfo
  int8: Int8Metrics
  # The SavedModel's (fake quant for QAT models); "float" in the file.
  float_model: ClassificationMetrics = pydantic.Field(alias="float")
  int8_float_agreement: Fraction  # Share of examples where int8 and float predict the same digit.
  quantization_accuracy_drop: float  # float accuracy - int8 accuracy (negative when int8 wins).
  baseline: Optional[BaselineMetrics]  # None: nothing verified deployed, or no comparison made.
  baseline_skipped: Optional[str]  # Why no comparison was made although a version was deployed.
  thresholds: Thresholds
  blessed: bool
  reason: str  # The verdict in plain words, every check with its numbers.


def from_json(content: bytes, source: str = FILE_NAME) -> EvaluationMetrics:
  """Parses and checks a metrics.json; raises ValueError naming `source` and every problem."""
  return EvaluationMetrics.parse(content, source)
