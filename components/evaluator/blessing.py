"""The blessing rule for the int8 model that ships, with a reason in plain words."""

import dataclasses
from typing import List, Optional, Tuple

# Bounds are inclusive; this absorbs float rounding in e.g. `baseline - tolerance` (accuracies are
# multiples of 1/num_examples, far coarser than this).
_ROUNDING = 1e-9

# The pipeline's default rules (also the `mnist-tfx run` defaults).
DEFAULT_MIN_INT8_ACCURACY = 0.99
DEFAULT_MAX_QUANTIZATION_DROP = 0.005  # 0.5 percentage points.
# The deployed model's int8 accuracy minus this is the floor (0.2 pp = 20 of 10,000 MNIST
# test images): wider than retraining noise, narrower than a real regression.
DEFAULT_BASELINE_TOLERANCE = 0.002
# The verdict's first words (`judge`'s reason is "<verdict>: <checks>").
BLESSED = "blessed"
NOT_BLESSED = "not blessed"


@dataclasses.dataclass(frozen=True)
class Thresholds:
  """What an int8 model must reach to be blessed (accuracies and drops as fractions, not %)."""
  # Minimum int8 accuracy on the eval split.
  min_int8_accuracy: float
  # Maximum (float accuracy - int8 accuracy): how much quantization may cost.
  max_quantization_drop: float
  # How far the int8 accuracy may fall below the deployed model's int8 accuracy on the same
  # data. Retraining the same model moves MNIST accuracy by about a tenth of a point, so a small
  # tolerance keeps that noise from blocking every new model while a real regression still fails.
  baseline_tolerance: float

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"{field.name} is a fraction and must be in [0, 1], got {value}")


NO_BASELINE_NOTE = "no baseline"


def decide(int8_accuracy: float, quantization_drop: float,
           baseline_int8_accuracy: Optional[float], thresholds: Thresholds,
           baseline_name: Optional[str] = None,
           no_baseline_note: Optional[str] = None) -> Tuple[bool, str]:
  """Returns (blessed, reason); the reason states every check, its numbers and its outcome, names
  the baseline (`baseline_name`, e.g. "deployed version 3") and, when there is no baseline to
  compare with, ends with `no_baseline_note` (why not)."""
  checks: List[Tuple[bool, str]] = []
  passed = int8_accuracy >= thresholds.min_int8_accuracy - _ROUNDING
  checks.append((passed, f"int8 accuracy {int8_accuracy:.4f} {'>=' if passed else '<'} "
                 f"{thresholds.min_int8_accuracy:.4f}"))
  passed = quantization_drop <= thresholds.max_quantization_drop + _ROUNDING
  checks.append((passed, f"quantization drop {100 * quantization_drop:.2f} pp "
                 f"{'<=' if passed else '>'} {100 * thresholds.max_quantization_drop:.2f} pp"))
  if baseline_int8_accuracy is not None:
    floor = baseline_int8_accuracy - thresholds.baseline_tolerance
    passed = int8_accuracy >= floor - _ROUNDING
    baseline = f"baseline ({baseline_name})" if baseline_name else "baseline"
    checks.append((passed, f"int8 accuracy {int8_accuracy:.4f} {'>=' if passed else '<'} "
                   f"{baseline} int8 accuracy {baseline_int8_accuracy:.4f} - tolerance "
                   f"{thresholds.baseline_tolerance:.4f} = {floor:.4f}"))
  blessed = all(ok for ok, _ in checks)
  parts = [text if ok else f"FAILED {text}" for ok, text in checks]
  if baseline_int8_accuracy is None:
    parts.append(no_baseline_note or NO_BASELINE_NOTE)
  return blessed, f"{BLESSED if blessed else NOT_BLESSED}: " + ", ".join(parts)
