"""Measures the Jensen-Shannon divergence TFDV reports on `image` between MNIST samples and shifts.

The calibration behind the `image` skew comparator's threshold in pipeline/schema/schema.pbtxt
(README, "Data validation"). Statistics are computed with the pipeline's schema, like StatisticsGen.

  .venv/bin/python -m benchmarks.image_skew [WORK_DIR]
"""

import os
import sys
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_data_validation as tfdv

from core import features
from pipeline import pipeline as pipeline_def
from tests import mnist_slices

SCHEMA = tfdv.load_schema_text(pipeline_def.SCHEMA_FILE)


def statistics(work_dir: str, name: str, images: np.ndarray, labels: np.ndarray):
  path = os.path.join(work_dir, f"{name}.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for image, label in zip(images, labels, strict=True):
      writer.write(features.to_tf_example(image.reshape(-1), int(label)).SerializeToString())
  return tfdv.generate_statistics_from_tfrecord(
      path, stats_options=tfdv.StatsOptions(schema=SCHEMA),
      pipeline_options=None)


def image_divergence(base, other) -> float:
  schema = type(SCHEMA)()
  schema.CopyFrom(SCHEMA)
  for feature in schema.feature:
    if feature.name == "image":
      feature.skew_comparator.jensen_shannon_divergence.threshold = 1e-12  # Always reported.
  anomalies = tfdv.validate_statistics(other, schema, serving_statistics=base)
  [info] = [i for i in anomalies.drift_skew_info if list(i.path.step) == ["image"]]
  return info.skew_measurements[0].value


def main() -> None:
  work_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="image_skew_")
  train_images, train_labels = mnist_slices.load_full("train")
  test_images, test_labels = mnist_slices.load_full("eval")
  train = statistics(work_dir, "train", train_images, train_labels)

  def shifted(shift):
    return np.clip(shift(test_images.astype(np.int64)), 0, 255).astype(np.uint8)

  cases = {
      "test": test_images,
      "test inverted": shifted(lambda p: 255 - p),
      "test brightness +10": shifted(lambda p: p + 10),
      "test contrast x0.9": shifted(lambda p: np.round(p * 0.9)),
  }
  for name, images in cases.items():
    other = statistics(work_dir, name.replace(" ", "_"), images, test_labels)
    print(f"{name} vs full train: {image_divergence(train, other):.6g}", flush=True)
  for num_train, num_eval in ((2000, 500), (500, 200)):
    base = statistics(work_dir, f"train{num_train}", train_images[:num_train],
                      train_labels[:num_train])
    for part, sl in (("first", slice(0, num_eval)), ("last", slice(-num_eval, None))):
      other = statistics(work_dir, f"test{num_eval}_{part}", test_images[sl], test_labels[sl])
      print(f"{part} {num_eval} test vs first {num_train} train: "
            f"{image_divergence(base, other):.6g}", flush=True)


if __name__ == "__main__":
  main()
