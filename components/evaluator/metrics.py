"""Classification statistics that add up across batches and Beam workers, and the metrics from them.

Each batch yields a nested dict of counts and sums (confusion matrix, summed log loss, ...); the
Beam combine adds them key by key, and `classification_metrics` turns the totals into rates. Keeping
only sums makes the result independent of how the runner splits the data.
"""

from typing import Any, Dict, Iterable, List

import numpy as np

from core import contract

# Probabilities are clipped to [LOG_LOSS_EPSILON, 1] before the log (Keras' epsilon): the int8
# output is quantized in steps of 1/256, so a true-class probability of exactly 0 is common.
LOG_LOSS_EPSILON = 1e-7

Stats = Dict[str, Any]  # Nested dict whose leaves are numbers or numpy arrays.


def batch_stats(labels: np.ndarray, probabilities: np.ndarray) -> Stats:
  """Confusion matrix (rows: true digit, columns: predicted) and summed log loss of one batch."""
  labels = np.asarray(labels, np.int64)
  predictions = np.argmax(probabilities, axis=1)
  confusion = np.bincount(labels * contract.NUM_CLASSES + predictions,
                          minlength=contract.NUM_CLASSES**2).reshape(contract.NUM_CLASSES,
                                                                     contract.NUM_CLASSES)
  true_class_probability = probabilities[np.arange(len(labels)), labels]
  log_loss_sum = -np.log(np.clip(true_class_probability, LOG_LOSS_EPSILON, 1.0)).sum()
  return {"confusion_matrix": confusion, "log_loss_sum": float(log_loss_sum)}


def add_stats(left: Stats, right: Stats) -> Stats:
  """Adds two nested stats dicts key by key (a key missing on one side counts as zero)."""
  total = dict(left)
  for key, value in right.items():
    if key not in total:
      total[key] = value
    elif isinstance(value, dict):
      total[key] = add_stats(total[key], value)
    else:
      total[key] = total[key] + value
  return total


def sum_stats(all_stats: Iterable[Stats]) -> Stats:
  """Adds any number of stats dicts."""
  total: Stats = {}
  for stats in all_stats:
    total = add_stats(total, stats)
  return total


def classification_metrics(confusion_matrix: np.ndarray, log_loss_sum: float) -> Dict[str, Any]:
  """Accuracy, per-class precision and recall, mean log loss and the confusion matrix.

  A class never predicted has precision 0 (and one never present recall 0), as in scikit-learn's
  `zero_division=0`.
  """
  confusion = np.asarray(confusion_matrix, np.int64)
  total = int(confusion.sum())
  correct = int(np.trace(confusion))
  true_positives = np.diag(confusion).astype(np.float64)
  predicted = confusion.sum(axis=0)
  actual = confusion.sum(axis=1)
  return {
      "accuracy": correct / total,
      "correct": correct,
      "log_loss": log_loss_sum / total,
      "precision": _rates(true_positives, predicted),
      "recall": _rates(true_positives, actual),
      "confusion_matrix": confusion.tolist(),
  }


def _rates(numerators: np.ndarray, denominators: np.ndarray) -> List[float]:
  return np.divide(numerators, denominators, out=np.zeros_like(numerators),
                   where=denominators > 0).tolist()
