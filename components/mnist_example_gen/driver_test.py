"""MnistExampleGen's input fingerprint (its driver's, and the Kubeflow compile's) covers exactly the
files the executor's validation reads."""

import gzip
import os
import shutil

import pytest

from components.mnist_example_gen import idx
from tests import mnist_slices


@pytest.fixture
def slice_dir(mnist_slice_dir, tmp_path) -> str:
  return shutil.copytree(mnist_slice_dir, str(tmp_path / "mnist"))


def fingerprinted_names(input_dir: str):
  return [entry.rpartition(":")[0] for entry in idx.input_fingerprint(input_dir).split(",")]


def test_fingerprint_follows_both_forms_and_every_file_sha256sums_lists(slice_dir):
  with gzip.open(os.path.join(slice_dir, idx.TRAIN_IMAGES + ".gz")) as f, \
      open(os.path.join(slice_dir, idx.TRAIN_IMAGES), "wb") as out:
    out.write(f.read())  # Extracted beside its download: validation reads and compares both.
  with open(os.path.join(slice_dir, "README"), "w") as f:
    f.write("MNIST slice\n")
  mnist_slices.write_sha256sums(slice_dir)  # Lists README too: validation reads it.
  with open(os.path.join(slice_dir, "notes.txt"), "w") as f:
    f.write("not an input\n")

  names = fingerprinted_names(slice_dir)

  assert names == idx.input_files(slice_dir)
  assert set(names) == set(os.listdir(slice_dir)) - {"notes.txt"}
  before = idx.input_fingerprint(slice_dir)
  mnist_slices.flip_pixel(os.path.join(slice_dir, idx.TRAIN_IMAGES))  # The raw form changes...
  assert idx.input_fingerprint(slice_dir) != before  # ...so the cache cannot be reused.
  with pytest.raises(idx.IdxFormatError, match="holds different data than"):
    idx.validate_input_dir(slice_dir)  # (And the executor refuses the disagreeing pair.)
