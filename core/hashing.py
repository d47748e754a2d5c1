"""SHA-256, one helper per kind of input: bytes in memory, and a binary stream read in blocks.

Every sha256 the project records (the int8 bytes the evaluator blesses and the pusher ships, the
pushed files in model.json, the IDX files MnistExampleGen fingerprints) is the lowercase hex digest
these return. No TensorFlow import; callers open files with the filesystem they need.
"""

import hashlib
from typing import BinaryIO

BLOCK_SIZE = 1 << 20  # 1 MiB reads: flat memory for files of any size.


def sha256_bytes(content: bytes) -> str:
  """The hex SHA-256 (64 lowercase characters) of `content`."""
  return hashlib.sha256(content).hexdigest()


def sha256_stream(stream: BinaryIO) -> str:
  """The hex SHA-256 of everything left in a binary file object, read in BLOCK_SIZE blocks."""
  digest = hashlib.sha256()
  for block in iter(lambda: stream.read(BLOCK_SIZE), b""):
    digest.update(block)
  return digest.hexdigest()
