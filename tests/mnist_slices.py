"""Small real slices of MNIST for tests: the first N images of the bundled files, as IDX files."""

import gzip
import hashlib
import os
import pathlib
import struct

import numpy as np

from components.mnist_example_gen import idx

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
FULL_MNIST_DIR = REPO_ROOT / "data" / "mnist"


def write_idx(path: str, array: np.ndarray, magic: int, compress: bool = True) -> None:
  """Writes a uint8 array as an IDX file (gzipped when `compress`)."""
  data = struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
  with open(path, "wb") as f:
    f.write(gzip.compress(data, mtime=0) if compress else data)


def load_full(split: str = "train"):
  """Returns (images, labels) of the bundled full MNIST split ('train' or 'eval')."""
  images_name, labels_name = ((idx.TRAIN_IMAGES, idx.TRAIN_LABELS) if split == "train" else
                              (idx.EVAL_IMAGES, idx.EVAL_LABELS))
  return idx.read_pair(str(FULL_MNIST_DIR / f"{images_name}.gz"),
                       str(FULL_MNIST_DIR / f"{labels_name}.gz"))


def write_slice(directory: str, num_train: int, num_eval: int) -> str:
  """Writes the first `num_train` training and `num_eval` test images as the four IDX files."""
  os.makedirs(directory, exist_ok=True)
  for split, count, (images_name, labels_name) in (
      ("train", num_train, (idx.TRAIN_IMAGES, idx.TRAIN_LABELS)),
      ("eval", num_eval, (idx.EVAL_IMAGES, idx.EVAL_LABELS))):
    images, labels = load_full(split)
    write_idx(os.path.join(directory, f"{images_name}.gz"), images[:count], idx.IMAGES_MAGIC)
    write_idx(os.path.join(directory, f"{labels_name}.gz"), labels[:count], idx.LABELS_MAGIC)
  return directory


def write_sha256sums(directory: str) -> None:
  """Writes SHA256SUMS for every other file in `directory`, as `sha256sum *` would."""
  checksums = {}
  for name in sorted(os.listdir(directory)):
    if name != idx.CHECKSUMS_FILE:
      with open(os.path.join(directory, name), "rb") as f:
        checksums[name] = hashlib.sha256(f.read()).hexdigest()
  with open(os.path.join(directory, idx.CHECKSUMS_FILE), "w") as f:
    f.write(idx.format_checksums(checksums))


def flip_pixel(images_path: str) -> None:
  """Rewrites an images file with one pixel inverted: still valid IDX, different content."""
  images = idx.read_images(images_path).copy()
  images[0, 14, 14] ^= 0xFF
  write_idx(images_path, images, idx.IMAGES_MAGIC, compress=images_path.endswith(idx.GZIP_SUFFIX))
