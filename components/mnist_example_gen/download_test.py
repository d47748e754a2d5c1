"""fetch_mnist against mirrors served over loopback HTTP from the bundled MNIST files."""

import http.server
import os
import threading

import pytest

from components.mnist_example_gen import download
from components.mnist_example_gen import idx
from core import errors
from tests import mnist_slices


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
  """Serves files from the server's directory and records every requested path."""

  def do_GET(self):
    self.server.requests.append(self.path)
    super().do_GET()

  def log_message(self, *args):
    pass


@pytest.fixture(scope="module")
def server_root(tmp_path_factory):
  """good/: the real MNIST files; bad/: the same, but train-labels with one byte changed."""
  root = tmp_path_factory.mktemp("mirror")
  for mirror in ("good", "bad"):
    (root / mirror).mkdir()
    for name in download.MNIST_SHA256:
      os.symlink(mnist_slices.FULL_MNIST_DIR / name, root / mirror / name)
  corrupt = root / "bad" / "train-labels-idx1-ubyte.gz"
  data = bytearray(corrupt.read_bytes())
  data[-10] ^= 0xFF
  corrupt.unlink()
  corrupt.write_bytes(bytes(data))
  return root


@pytest.fixture
def server(server_root):
  """A loopback HTTP server over `server_root`; `.url(mirror)` and `.requests` for the tests."""
  def handler(*args):
    return RecordingHandler(*args, directory=str(server_root))

  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  httpd.requests = []
  httpd.url = lambda mirror: f"http://127.0.0.1:{httpd.server_port}/{mirror}/"
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield httpd
  httpd.shutdown()
  httpd.server_close()
  thread.join()


def bundled_bytes(name: str) -> bytes:
  return (mnist_slices.FULL_MNIST_DIR / name).read_bytes()


def test_known_sums_are_those_of_the_bundled_files():
  with open(mnist_slices.FULL_MNIST_DIR / idx.CHECKSUMS_FILE) as f:
    bundled = idx.parse_checksums(idx.CHECKSUMS_FILE, f.read())
  assert download.MNIST_SHA256 == bundled
  for name, digest in download.MNIST_SHA256.items():
    assert idx.file_sha256(str(mnist_slices.FULL_MNIST_DIR / name)) == digest


def test_fetches_verified_files_that_example_gen_accepts(server, tmp_path):
  cache_dir = download.fetch_mnist(str(tmp_path / "cache"), mirrors=[server.url("good")])

  assert sorted(os.listdir(cache_dir)) == sorted([*download.MNIST_SHA256, idx.CHECKSUMS_FILE])
  for name in download.MNIST_SHA256:
    assert (tmp_path / "cache" / name).read_bytes() == bundled_bytes(name)
  assert idx.read_checksums(cache_dir) == download.MNIST_SHA256
  sources = idx.validate_input_dir(cache_dir)
  assert sources["train"].num_examples == len(mnist_slices.load_full("train")[1])


def test_corrupt_download_is_an_error_and_never_cached(server, tmp_path):
  cache = tmp_path / "cache"

  with pytest.raises(download.DownloadError,
                     match=r"train-labels-idx1-ubyte.gz could not be fetched intact.*"
                           r"/bad/train-labels-idx1-ubyte.gz: SHA-256 mismatch: expected "
                           + download.MNIST_SHA256["train-labels-idx1-ubyte.gz"]):
    download.fetch_mnist(str(cache), mirrors=[server.url("bad")])

  # The intact files fetched before the failure stay; the corrupt one and any partial file do not.
  assert sorted(os.listdir(cache)) == sorted(
      name for name in download.MNIST_SHA256 if name != "train-labels-idx1-ubyte.gz")
  for name in os.listdir(cache):
    assert (cache / name).read_bytes() == bundled_bytes(name)


def test_falls_back_to_the_next_mirror(server, tmp_path):
  download.fetch_mnist(str(tmp_path / "cache"),
                       mirrors=[server.url("missing"), server.url("bad"), server.url("good")])

  names = sorted(download.MNIST_SHA256)
  assert server.requests == [
      path for name in names for path in
      [f"/missing/{name}", f"/bad/{name}"] + ([f"/good/{name}"]
                                              if name == "train-labels-idx1-ubyte.gz" else [])]
  for name in names:
    assert (tmp_path / "cache" / name).read_bytes() == bundled_bytes(name)


def test_cached_files_are_not_fetched_again_unless_damaged(server, tmp_path):
  cache = tmp_path / "cache"
  download.fetch_mnist(str(cache), mirrors=[server.url("good")])
  server.requests.clear()

  download.fetch_mnist(str(cache), mirrors=[server.url("good")])
  assert server.requests == []

  (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"truncated")
  download.fetch_mnist(str(cache), mirrors=[server.url("good")])
  assert server.requests == ["/good/t10k-labels-idx1-ubyte.gz"]
  assert (cache / "t10k-labels-idx1-ubyte.gz").read_bytes() == bundled_bytes(
      "t10k-labels-idx1-ubyte.gz")


def test_an_unreachable_mirror_ends_in_one_service_line_not_an_internal_error(tmp_path):
  cache = tmp_path / "cache"
  with pytest.raises(download.DownloadError) as raised:
    download.fetch_mnist(str(cache), mirrors=["http://127.0.0.1:1/"], timeout_seconds=5)

  line = errors.error_line(raised.value, "mnist-tfx run")
  assert line == ("mnist-tfx run failed: t10k-images-idx3-ubyte.gz could not be fetched intact "
                  "from any mirror: http://127.0.0.1:1/t10k-images-idx3-ubyte.gz: connection "
                  "refused")  # The OS's words, not urllib's '<urlopen error ...>'.
  assert "internal error" not in line
  assert errors.exit_code(raised.value) == errors.EXIT_INTERNAL_FAILURE  # 1: a service failed.
  assert os.listdir(cache) == []  # Nothing half-written.
