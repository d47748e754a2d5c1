"""Aggregation over seeds: mean and range of each measure, and time to an accuracy.

A route's runs differ only in the seed (initialization, data order, augmentation, dropout); the
spread over seeds is the run-to-run noise a difference between routes must exceed to mean
anything.
"""

import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

# Accuracies whose time to reach the table gives (fractions).
THRESHOLDS = (0.990, 0.993, 0.994)


def spread(values: Sequence[float]) -> Optional[Dict[str, float]]:
  """{"mean", "min", "max", "n"} of the values; None when there are none."""
  if not values:
    return None
  return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
          "n": len(values)}


def time_to(eval_history: Sequence[Tuple[float, float]], threshold: float) -> Optional[float]:
  """Seconds of training (evaluations included) until the end of the first epoch whose
  evaluation accuracy reached `threshold`; None when no epoch did.

  `eval_history`: (seconds since the first epoch began, accuracy) after each epoch, as the
  trainers' TrainingResult.eval_history gives it (fake quant for QAT routes, float for PTQ
  routes: their int8 model exists only after training).
  """
  return next((seconds for seconds, accuracy in eval_history if accuracy >= threshold), None)


def threshold_key(threshold: float) -> str:
  """"99.0" for 0.990: the JSON key and the table's heading."""
  return f"{100 * threshold:.1f}"


def mean_curve(curves: Sequence[Sequence[float]]) -> List[float]:
  """Epoch-wise mean of the per-epoch accuracy curves, over the epochs every run has."""
  length = min((len(curve) for curve in curves), default=0)
  return [statistics.fmean(curve[epoch] for curve in curves) for epoch in range(length)]


def summarize(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
  """One route's summary over its runs (one per seed), from the runs' rows (`run.py`)."""
  def values(key: str) -> List[float]:
    return [run[key] for run in runs]

  histories = [[tuple(point) for point in run["eval_history"]] for run in runs]
  time_to_accuracy = {}
  for threshold in THRESHOLDS:
    reached = [t for t in (time_to(history, threshold) for history in histories) if t is not None]
    time_to_accuracy[threshold_key(threshold)] = {"reached": len(reached), "runs": len(runs),
                                                  "seconds": spread(reached)}
  return {
      "seeds": [run["seed"] for run in runs],
      "float_accuracy": spread(values("float_accuracy")),
      "int8_accuracy": spread(values("int8_accuracy")),
      "quantization_drop_pp": spread(values("quantization_drop_pp")),
      "time_to_accuracy": time_to_accuracy,
      "train_seconds": spread(values("train_seconds")),
      "wall_seconds": spread(values("wall_seconds")),
      "training_tflop": spread(values("training_tflop")),
      "int8_latency_p50_ms": spread([run["int8_latency_ms"]["p50"] for run in runs]),
      "int8_images_per_second": spread(values("int8_images_per_second")),
      "eval_accuracy_per_epoch": mean_curve([[a for _, a in history] for history in histories]),
  }
