"""`mnist-tfx run --download`: fetches the four official MNIST files into a verified cache.

Every file is checked against the official SHA-256 before it enters the cache (written to a
temporary name, renamed only when the digest matches), so the cache never holds a corrupt file.
A SHA256SUMS is written beside them, so MnistExampleGen verifies the files once more.
"""

import hashlib
import http.client
import os
from typing import Sequence
import urllib.error
import urllib.request
import uuid

from absl import logging
from tfx.dsl.io import fileio

from components.mnist_example_gen import idx
from core import errors

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# SHA-256 of the official gzipped files: the one copy in code (the bundled data/mnist/SHA256SUMS
# describes the same bytes, which a test checks).
MNIST_SHA256 = {
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
}

_BLOCK_SIZE = 1 << 20


class DownloadError(errors.ServiceError):
  """A file could not be fetched intact from any mirror: the mirrors (or the network to them)
  failed, not the user's input and not this program (exit code 1 without "internal error")."""


def fetch_mnist(cache_dir: str, mirrors: Sequence[str] = DEFAULT_MIRRORS,
                timeout_seconds: float = 60.0) -> str:
  """Makes sure `cache_dir` holds the four verified MNIST files and returns it.

  Files already cached with the right digest are not fetched again. Each missing or damaged file
  is fetched from the first mirror that serves the expected bytes.

  Raises:
    DownloadError: naming the file and what every mirror answered.
  """
  fileio.makedirs(cache_dir)
  for name, expected in sorted(MNIST_SHA256.items()):
    path = os.path.join(cache_dir, name)
    if fileio.exists(path) and idx.file_sha256(path) == expected:
      logging.info("Using cached %s", path)
      continue
    _fetch_verified(name, expected, path, mirrors, timeout_seconds)
  _write_atomically(os.path.join(cache_dir, idx.CHECKSUMS_FILE),
                    idx.format_checksums(MNIST_SHA256).encode())
  return cache_dir


def _fetch_verified(name: str, expected: str, path: str, mirrors: Sequence[str],
                    timeout_seconds: float) -> None:
  """Fetches `name` from the first mirror whose bytes have the expected digest into `path`."""
  failures = []
  for mirror in mirrors:
    url = mirror.rstrip("/") + "/" + name
    staging_path = f"{path}.partial-{uuid.uuid4().hex}"
    try:
      logging.info("Fetching %s", url)
      digest = hashlib.sha256()
      with urllib.request.urlopen(url, timeout=timeout_seconds) as response, \
          fileio.open(staging_path, "wb") as out:
        for block in iter(lambda: response.read(_BLOCK_SIZE), b""):
          digest.update(block)
          out.write(block)
      if digest.hexdigest() != expected:
        raise DownloadError(f"SHA-256 mismatch: expected {expected}, got {digest.hexdigest()}")
      fileio.rename(staging_path, path, overwrite=True)
      return
    except (DownloadError, http.client.HTTPException, OSError) as e:  # URLError is an OSError.
      failures.append(f"{url}: {errors.connection_failure_reason(e)}")
      logging.warning("Could not fetch %s: %s", url, e)
    finally:
      if fileio.exists(staging_path):
        fileio.remove(staging_path)
  raise DownloadError(f"{name} could not be fetched intact from any mirror: " + "; ".join(failures))


def _write_atomically(path: str, content: bytes) -> None:
  staging_path = f"{path}.partial-{uuid.uuid4().hex}"
  with fileio.open(staging_path, "wb") as f:
    f.write(content)
  fileio.rename(staging_path, path, overwrite=True)
