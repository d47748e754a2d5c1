"""Writes the evaluation to TensorBoard: scalars, confusion-matrix images and a text report."""



import numpy as np
import tensorflow as tf

from core import evaluation_metrics

_CELL_PIXELS = 24
_GRID_COLOR = np.array([200, 200, 200], np.uint8)


def confusion_matrix_image(confusion_matrix: np.ndarray) -> np.ndarray:
  """Renders a confusion matrix as an RGB uint8 image [H, W, 3], one square cell per entry.

  Rows are true digits (top = 0), columns predicted digits (left = 0), each row normalized by its
  count. Correct cells are blue by that fraction; error cells red relative to the most frequent
  error (square-root scale), so that a few dozen mistakes stay visible next to a 99% diagonal.
  """
  confusion = np.asarray(confusion_matrix, np.float64)
  row_totals = confusion.sum(axis=1, keepdims=True)
  fractions = np.divide(confusion, row_totals, out=np.zeros_like(confusion), where=row_totals > 0)
  is_diagonal = np.eye(confusion.shape[0], dtype=bool)
  worst_error = fractions[~is_diagonal].max()
  errors = np.sqrt(fractions / worst_error) if worst_error > 0 else np.zeros_like(fractions)
  intensity = np.where(is_diagonal, fractions, errors)
  # Fade from white to blue (diagonal) or red (errors).
  cells = np.empty(confusion.shape + (3,))
  cells[..., 0] = np.where(is_diagonal, 1 - intensity, 1.0)
  cells[..., 1] = 1 - intensity
  cells[..., 2] = np.where(is_diagonal, 1.0, 1 - intensity)
  image = np.repeat(np.repeat((255 * cells).astype(np.uint8), _CELL_PIXELS, axis=0), _CELL_PIXELS,
                    axis=1)
  image[::_CELL_PIXELS, :] = _GRID_COLOR
  image[:, ::_CELL_PIXELS] = _GRID_COLOR
  return image


def _markdown_table(confusion_matrix: np.ndarray) -> str:
  size = len(confusion_matrix)
  header = "| true \\ predicted | " + " | ".join(str(c) for c in range(size)) + " |"
  rule = "|---" * (size + 1) + "|"
  rows = [f"| **{label}** | " + " | ".join(str(int(v)) for v in row) + " |"
          for label, row in enumerate(confusion_matrix)]
  return "\n".join([header, rule, *rows])


def write(log_dir: str, metrics: evaluation_metrics.EvaluationMetrics) -> None:
  """Writes the evaluation's scalars, confusion matrices and verdict under `log_dir` at step 0."""
  scalars = {
      "int8/accuracy": metrics.int8.accuracy,
      "int8/log_loss": metrics.int8.log_loss,
      "int8/agreement_with_float": metrics.int8_float_agreement,
      "int8/latency_p50_ms": metrics.int8.latency_ms.p50,
      "int8/latency_p99_ms": metrics.int8.latency_ms.p99,
      "int8/batched_throughput_images_per_s": metrics.int8.batched_images_per_second,
      "int8/model_size_bytes": metrics.int8.model_size_bytes,
      "float/accuracy": metrics.float_model.accuracy,
      "float/log_loss": metrics.float_model.log_loss,
      "quantization/accuracy_drop_pp": 100 * metrics.quantization_accuracy_drop,
      "blessing/blessed": float(metrics.blessed),
  }
  if metrics.baseline is not None:
    scalars["baseline/int8_accuracy"] = metrics.baseline.int8.accuracy
  writer = tf.summary.create_file_writer(log_dir)
  with writer.as_default(step=0):
    for name, value in scalars.items():
      tf.summary.scalar(name, value)
    for model, judged in (("int8", metrics.int8), ("float", metrics.float_model)):
      confusion = np.asarray(judged.confusion_matrix)
      tf.summary.image(f"{model}/confusion_matrix", confusion_matrix_image(confusion)[np.newaxis],
                       description="rows: true digit 0-9 top to bottom; columns: predicted digit "
                       "0-9 left to right; blue = correct (row fraction), red = error (sqrt of row "
                       "fraction relative to the most frequent error)")
      tf.summary.text(f"{model}/confusion_matrix_counts", _markdown_table(confusion))
    tf.summary.text("blessing/reason", metrics.reason)
  writer.close()
