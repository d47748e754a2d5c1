"""Reading and validating MNIST-format IDX files (gzipped or raw).

The format (http://yann.lecun.com/exdb/mnist/): a big-endian header of a magic number (2051 for
images, 2049 for labels) and one uint32 per dimension, then the uint8 values row-major.
"""

import gzip
import struct
import zlib
from typing import Tuple

import numpy as np
from tfx.dsl.io import fileio

from components import features

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# The four standard file names; each may also be present without the .gz suffix.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
EVAL_IMAGES = "t10k-images-idx3-ubyte"
EVAL_LABELS = "t10k-labels-idx1-ubyte"
STANDARD_FILES = (TRAIN_IMAGES, TRAIN_LABELS, EVAL_IMAGES, EVAL_LABELS)


class IdxFormatError(ValueError):
  """An IDX file is missing, unreadable or not what MNIST-format data must be."""

  def __init__(self, path: str, problem: str):
    super().__init__(f"{path}: {problem}")
    self.path = path
    self.problem = problem


def read_bytes(path: str) -> bytes:
  """Returns the decompressed content of a raw or gzipped IDX file."""
  if not fileio.exists(path):
    raise IdxFormatError(path, "file not found")
  with fileio.open(path, "rb") as f:
    data = f.read()
  if data[:2] == b"\x1f\x8b":
    try:
      return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:
      raise IdxFormatError(path, f"corrupt or truncated gzip data ({e})") from e
  return data


def parse(path: str, data: bytes, magic: int, ndim: int) -> np.ndarray:
  """Parses IDX bytes into a uint8 array, checking the magic number and the payload size."""
  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise IdxFormatError(path, f"too short for an IDX header ({len(data)} bytes)")
  found_magic, *dims = struct.unpack(f">{1 + ndim}I", data[:header_size])
  if found_magic != magic:
    raise IdxFormatError(path, f"wrong magic number {found_magic}, expected {magic}")
  expected = header_size + int(np.prod(dims))
  if len(data) != expected:
    raise IdxFormatError(
        path, f"size {len(data)} bytes does not match header dimensions {dims} "
        f"({expected} bytes expected); the file is truncated or corrupt")
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(dims)


def read_images(path: str) -> np.ndarray:
  """Reads an images file: returns uint8 [N, 28, 28]."""
  images = parse(path, read_bytes(path), IMAGES_MAGIC, 3)
  if images.shape[1:] != (features.IMAGE_HEIGHT, features.IMAGE_WIDTH):
    raise IdxFormatError(
        path, f"images are {images.shape[1]}x{images.shape[2]}, expected "
        f"{features.IMAGE_HEIGHT}x{features.IMAGE_WIDTH}")
  return images


def read_labels(path: str) -> np.ndarray:
  """Reads a labels file: returns uint8 [N] with values 0-9."""
  labels = parse(path, read_bytes(path), LABELS_MAGIC, 1)
  if labels.size and labels.max() >= features.NUM_CLASSES:
    bad = int(np.argmax(labels >= features.NUM_CLASSES))
    raise IdxFormatError(
        path, f"label {labels[bad]} at index {bad} is out of range 0-{features.NUM_CLASSES - 1}")
  return labels


def read_pair(images_path: str, labels_path: str) -> Tuple[np.ndarray, np.ndarray]:
  """Reads an images file and its labels file and checks that they have the same count."""
  images = read_images(images_path)
  labels = read_labels(labels_path)
  if len(images) != len(labels):
    raise IdxFormatError(
        images_path, f"{len(images)} images but {len(labels)} labels in {labels_path}")
  return images, labels
