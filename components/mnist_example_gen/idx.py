"""Reading and validating MNIST-format IDX files (gzipped or raw).

The format (http://yann.lecun.com/exdb/mnist/): a big-endian header of a magic number (2051 for
images, 2049 for labels) and one uint32 per dimension, then the uint8 values row-major.
"""

import os
import struct
from typing import Dict, List, NamedTuple, Optional, Tuple
import zlib

from absl import logging
import numpy as np
from tfx.dsl.io import fileio

from core import contract
from core import errors
from core import hashing

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# The four standard file names; each may also be present without the .gz suffix.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
EVAL_IMAGES = "t10k-images-idx3-ubyte"
EVAL_LABELS = "t10k-labels-idx1-ubyte"
STANDARD_FILES = (TRAIN_IMAGES, TRAIN_LABELS, EVAL_IMAGES, EVAL_LABELS)
# Which (images, labels) files make each split of the Examples artifact.
SPLIT_FILES = {
    contract.TRAIN_SPLIT: (TRAIN_IMAGES, TRAIN_LABELS),
    contract.EVAL_SPLIT: (EVAL_IMAGES, EVAL_LABELS),
}
GZIP_SUFFIX = ".gz"
# Optional `sha256sum` output beside the IDX files; when present every file it lists must match.
CHECKSUMS_FILE = "SHA256SUMS"


class IdxFormatError(errors.PipelineInputError):
  """An IDX file is missing, unreadable or not what MNIST-format data must be."""

  def __init__(self, path: str, problem: str):
    super().__init__(f"{path}: {problem}")
    self.path = path
    self.problem = problem


GZIP_MAGIC = b"\x1f\x8b"


def gunzip(path: str, data: bytes) -> bytes:
  """Decompresses every gzip member of `data`, as `gzip -d` does.

  Bytes after the last complete member that do not start another member (e.g. a `\r\n` added by
  a mail or FTP transfer) are ignored with a warning, like `gzip -t` ("trailing garbage ignored"):
  the decompressed content is still checked against its IDX header (and SHA256SUMS when present).

  Raises:
    IdxFormatError: a member is corrupt, or the data ends inside a member (truncated).
  """
  members = []
  rest = data
  while rest[:2] == GZIP_MAGIC:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip wrapper
    try:
      members.append(decompressor.decompress(rest))
    except zlib.error as e:
      raise IdxFormatError(path, f"corrupt gzip data ({e})") from e
    if not decompressor.eof:
      raise IdxFormatError(
          path, f"truncated gzip data: the stream ends after {len(data)} bytes, before its end "
          "marker; download the file again")
    rest = decompressor.unused_data
  if rest:
    logging.warning("%s: %d bytes after the end of the gzip stream, ignored (as gzip does).",
                    path, len(rest))
  return b"".join(members)


def read_bytes(path: str) -> bytes:
  """Returns the decompressed content of a raw or gzipped IDX file (see `gunzip`)."""
  if not fileio.exists(path):
    raise IdxFormatError(path, "file not found")
  with fileio.open(path, "rb") as f:
    data = f.read()
  return gunzip(path, data) if data[:2] == GZIP_MAGIC else data


def parse(path: str, data: bytes, magic: int, ndim: int) -> np.ndarray:
  """Parses IDX bytes into a uint8 array, checking the magic number and the payload size."""
  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise IdxFormatError(path, f"too short for an IDX header ({len(data)} bytes)")
  found_magic, *dims = struct.unpack(f">{1 + ndim}I", data[:header_size])
  if found_magic != magic:
    raise IdxFormatError(path, f"wrong magic number {found_magic}, expected {magic}")
  expected = header_size + int(np.prod(dims))
  record_size = int(np.prod(dims[1:]))
  if len(data) > expected:
    raise IdxFormatError(
        path, f"{len(data) - expected} bytes beyond the {dims[0]} records the header declares "
        f"(header dimensions {dims}: {expected} bytes expected, {len(data)} found)")
  if len(data) < expected:
    raise IdxFormatError(
        path, f"the file is truncated: {expected - len(data)} bytes missing of the {dims[0]} "
        f"records of {record_size} bytes the header declares (header dimensions {dims}: "
        f"{expected} bytes expected, {len(data)} found)")
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(dims)


def read_images(path: str) -> np.ndarray:
  """Reads an images file: returns uint8 [N, 28, 28]."""
  images = parse(path, read_bytes(path), IMAGES_MAGIC, 3)
  if images.shape[1:] != (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH):
    raise IdxFormatError(
        path, f"images are {images.shape[1]}x{images.shape[2]}, expected "
        f"{contract.IMAGE_HEIGHT}x{contract.IMAGE_WIDTH}")
  return images


def read_labels(path: str) -> np.ndarray:
  """Reads a labels file: returns uint8 [N] with values 0-9."""
  labels = parse(path, read_bytes(path), LABELS_MAGIC, 1)
  if labels.size and labels.max() >= contract.NUM_CLASSES:
    bad = int(np.argmax(labels >= contract.NUM_CLASSES))
    raise IdxFormatError(
        path, f"label {labels[bad]} at index {bad} is out of range 0-{contract.NUM_CLASSES - 1}")
  return labels


def read_pair(images_path: str, labels_path: str) -> Tuple[np.ndarray, np.ndarray]:
  """Reads an images file and its labels file and checks that they have the same count."""
  images = read_images(images_path)
  labels = read_labels(labels_path)
  if len(images) != len(labels):
    raise IdxFormatError(
        images_path, f"{len(images)} images but {len(labels)} labels in {labels_path}")
  return images, labels


class SplitSource(NamedTuple):
  """The validated files of one split and how many examples they hold."""
  images_path: str
  labels_path: str
  num_examples: int


def file_sha256(path: str) -> str:
  """The SHA-256 hex digest of a file on any fileio filesystem."""
  with fileio.open(path, "rb") as f:
    return hashing.sha256_stream(f)


def parse_checksums(path: str, text: str) -> Dict[str, str]:
  """Parses `sha256sum` output (`<hex>  <name>` or `<hex> *<name>`) into {name: hex digest}."""
  checksums = {}
  for line_number, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    digest, _, name = line.strip().partition(" ")
    name = name.lstrip(" *")
    if len(digest) != 64 or not name or any(c not in "0123456789abcdefABCDEF" for c in digest):
      raise IdxFormatError(path, f"line {line_number} is not in sha256sum format: {line!r}")
    checksums[name] = digest.lower()
  return checksums


def format_checksums(checksums: Dict[str, str]) -> str:
  """Formats {name: hex digest} as `sha256sum` output, sorted by name."""
  return "".join(f"{digest}  {name}\n" for name, digest in sorted(checksums.items()))


def read_checksums(input_dir: str) -> Optional[Dict[str, str]]:
  """Returns the parsed SHA256SUMS of `input_dir`, or None when there is none."""
  path = os.path.join(input_dir, CHECKSUMS_FILE)
  if not fileio.exists(path):
    return None
  with fileio.open(path, "r") as f:
    return parse_checksums(path, f.read())


def verify_checksums(input_dir: str, checksums: Dict[str, str]) -> None:
  """Checks that every file listed in SHA256SUMS is present and has the listed digest."""
  for name, expected in sorted(checksums.items()):
    path = os.path.join(input_dir, name)
    if not fileio.exists(path):
      raise IdxFormatError(path, f"file listed in {CHECKSUMS_FILE} not found")
    actual = file_sha256(path)
    if actual != expected:
      raise IdxFormatError(
          path, f"SHA-256 mismatch: {CHECKSUMS_FILE} lists {expected}, the file has {actual}")


def locate(input_dir: str, name: str) -> str:
  """Returns the path of `name` in `input_dir`, gzipped (preferred) or raw.

  When both forms are present (e.g. files extracted beside their downloads), they must hold the
  same data; the gzipped path is returned.

  Raises:
    IdxFormatError: neither form exists, or both exist with different content (naming both).
  """
  gz_path = os.path.join(input_dir, name + GZIP_SUFFIX)
  raw_path = os.path.join(input_dir, name)
  present = [path for path in (gz_path, raw_path) if fileio.exists(path)]
  if not present:
    raise IdxFormatError(gz_path, f"file not found (nor uncompressed {name})")
  if len(present) == 2 and read_bytes(gz_path) != read_bytes(raw_path):
    raise IdxFormatError(
        gz_path, f"holds different data than {raw_path} beside it; both forms of {name} are "
        "present, so it is unclear which is current: remove the stale one")
  return present[0]


def input_files(input_dir: str) -> List[str]:
  """Names of the files in `input_dir` that validation reads: both forms of each IDX name that are
  present, SHA256SUMS and the files it lists. (The driver's cache fingerprint covers exactly these.)
  """
  names = {n + suffix for n in STANDARD_FILES for suffix in (GZIP_SUFFIX, "")}
  names.add(CHECKSUMS_FILE)
  try:
    names.update(read_checksums(input_dir) or {})
  except IdxFormatError:
    pass  # Unreadable SHA256SUMS: validation reports it; its own bytes are still covered.
  return sorted(name for name in names if fileio.exists(os.path.join(input_dir, name)))


def input_fingerprint(input_dir: str) -> str:
  """`name:sha256` of every `input_files` file, comma-separated: what a cache key must hold so
  that it changes when any file validation reads changes (MnistExampleGen's driver adds it before
  a local run; `mnist-tfx kubeflow compile` computes it for Kubeflow Pipelines' cache key)."""
  return ",".join(f"{name}:{file_sha256(os.path.join(input_dir, name))}"
                  for name in input_files(input_dir))


def changed_files(fingerprint: str, other: str) -> List[str]:
  """The file names whose entries differ between two `input_fingerprint`s (added, removed or
  changed), sorted."""
  entries = [dict(entry.rpartition(":")[::2] for entry in f.split(",") if entry)
             for f in (fingerprint, other)]
  return sorted(name for name in set(entries[0]) | set(entries[1])
                if entries[0].get(name) != entries[1].get(name))


def split_paths(input_dir: str, split: str) -> Tuple[str, str]:
  """Returns the (images, labels) paths of a split in `input_dir`."""
  images_name, labels_name = SPLIT_FILES[split]
  return locate(input_dir, images_name), locate(input_dir, labels_name)


def validate_input_dir(input_dir: str) -> Dict[str, SplitSource]:
  """Fully validates the four IDX files of `input_dir` (and SHA256SUMS when present).

  Reads every file completely, so nothing downstream starts on data that would fail later.
  Returns the validated files and example count of each split.
  """
  checksums = read_checksums(input_dir)
  paths = {split: split_paths(input_dir, split) for split in SPLIT_FILES}
  if checksums is not None:
    verify_checksums(input_dir, checksums)
    for path in (p for pair in paths.values() for p in pair):
      if os.path.basename(path) not in checksums:
        raise IdxFormatError(path, f"not listed in {CHECKSUMS_FILE}, so it cannot be verified")
  sources = {}
  for split, (images_path, labels_path) in paths.items():
    images, _ = read_pair(images_path, labels_path)
    if not len(images):
      raise IdxFormatError(images_path, "contains no images")
    sources[split] = SplitSource(images_path, labels_path, len(images))
  return sources
