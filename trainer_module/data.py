"""Training input: the Examples artifact's gzipped TFRecords, parsed with the shared FEATURE_SPEC.

A split is read once through tf.data into memory (MNIST is 47 MB as uint8); each epoch is then a
shuffle seeded by (seed, epoch), so a resumed run sees exactly the batches an uninterrupted one
does. The training loop keeps the split as tensors and slices batches inside its graph: no tf.data
iterator per epoch.
"""

from typing import Iterable, Tuple

import numpy as np
import tensorflow as tf

from core import contract
from core import features

_READ_BATCH = 4096


def _glob(file_patterns: Iterable[str]):
  files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
  if not files:
    raise FileNotFoundError(f"No TFRecord files match {list(file_patterns)}.")
  return files


def load_split(file_patterns: Iterable[str]) -> Tuple[np.ndarray, np.ndarray]:
  """Returns (pixels uint8 [N, 784], labels int32 [N]) of every example matching the patterns."""
  def parse(serialized):
    parsed = tf.io.parse_example(serialized, features.FEATURE_SPEC)
    return (tf.cast(parsed[contract.IMAGE_KEY], tf.uint8),
            tf.cast(parsed[contract.LABEL_KEY], tf.int32))

  files = _glob(file_patterns)
  batches = [(pixels.numpy(), labels.numpy()) for pixels, labels in
             tf.data.TFRecordDataset(files, compression_type="GZIP").batch(_READ_BATCH).map(parse)]
  if not batches:
    raise ValueError(f"The TFRecord files {files} hold no examples.")
  pixels, labels = zip(*batches, strict=True)
  return np.concatenate(pixels), np.concatenate(labels)


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
  """The epoch's shuffle of `count` examples, int64 [count], fixed by (seed, epoch)."""
  return np.random.default_rng([seed, epoch]).permutation(count)
