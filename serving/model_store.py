"""Finds, verifies and loads pushed versions; keeps serving the newest good one (no TensorFlow).

A pushed version is DEST/<version>/ (core/versions.py: integer names only, the
`.incomplete-push-*` directories of pushes in progress are never versions) holding the files of
core/push_manifest.py: `model.tflite`, optionally `model_edgetpu.tflite`, and the manifest
`model.json` with every file's sha256. A version is served only after each file listed in the
manifest matched its sha256 and the interpreter ran one image; a version that fails is reported
(`failures`) and never retried, and the last good version keeps serving.

Paths: DEST is a local directory, read with os, so serving never imports TensorFlow (the serving
image has none). A destination in object storage is copied to a local directory first, as KServe's
storage initializer does (or `gsutil rsync`).

Edge TPU: when the version has `model_edgetpu.tflite`, the Edge TPU delegate `libedgetpu.so.1` is
loaded through LiteRT; when that fails (no library, no device) the CPU int8 model serves and
`device_reason` says why.
"""

import contextlib
import dataclasses
import os
import queue
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from absl import logging
import numpy as np

from core import hashing
from core import int8_runtime
from core import push_manifest
from core import versions

EDGETPU_LIBRARY = "libedgetpu.so.1"  # Coral's runtime (libedgetpu1-std / -max).
CPU = "cpu"
EDGETPU = "edgetpu"
DEFAULT_POLL_SECONDS = 2.0


class VersionError(ValueError):
  """A pushed version cannot be served: missing or mismatching file, bad manifest or model."""


def list_versions(destination: str) -> List[int]:
  """Published versions under the local directory `destination`, ascending (core.versions)."""
  return versions.versions(os.listdir(destination)) if os.path.isdir(destination) else []


def load_edgetpu_delegate() -> Any:
  """The Edge TPU delegate; raises ValueError/OSError when the library or device is missing."""
  from ai_edge_litert.interpreter import load_delegate
  return load_delegate(EDGETPU_LIBRARY)


@dataclasses.dataclass
class LoadedModel:
  """One verified version with its interpreters.

  Interpreters are not thread-safe: `classifier()` lends one from a pool (a new one is made when
  every pooled one is busy), so concurrent requests never share an interpreter and requests that
  started on this version finish on it after a newer version replaced it.
  """
  version: int
  path: str
  manifest: push_manifest.PushManifest
  device: str  # CPU or EDGETPU
  device_reason: str
  _make: Callable[[], int8_runtime.Int8Classifier]
  _pool: "queue.SimpleQueue[int8_runtime.Int8Classifier]" = dataclasses.field(
      default_factory=queue.SimpleQueue)

  @contextlib.contextmanager
  def classifier(self) -> Iterator[int8_runtime.Int8Classifier]:
    try:
      classifier = self._pool.get_nowait()
    except queue.Empty:
      classifier = self._make()
    try:
      yield classifier
    finally:
      self._pool.put(classifier)

  def predict_pixels(self, pixels: np.ndarray) -> np.ndarray:
    """Probabilities float32 [N, classes] for uint8-range pixels [N, 28, 28] (or [N, 784])."""
    with self.classifier() as classifier:
      if self.device == EDGETPU:  # The compiled model has a static batch of 1.
        return np.concatenate([classifier.predict_pixels(image[None]) for image in pixels])
      return classifier.predict_pixels(pixels)

  @property
  def input_quantization(self) -> Tuple[float, int]:
    with self.classifier() as classifier:
      return classifier.input_quantization

  @property
  def output_quantization(self) -> Tuple[float, int]:
    with self.classifier() as classifier:
      return classifier.output_quantization

  @property
  def labels(self) -> List[str]:
    return list(self.manifest.labels)


def _read_manifest(path: str, version: int) -> push_manifest.PushManifest:
  manifest_path = os.path.join(path, push_manifest.FILE_NAME)
  try:
    with open(manifest_path, "rb") as f:
      manifest = push_manifest.from_json(f.read(), manifest_path)
  except (OSError, ValueError) as e:
    raise VersionError(f"version {version}: cannot read {manifest_path}: {e}") from e
  if manifest.version != version:
    raise VersionError(f"version {version}: {manifest_path} says version {manifest.version}")
  return manifest


def _read_verified_files(path: str, version: int,
                         manifest: push_manifest.PushManifest) -> Dict[str, bytes]:
  """{name: content} of every file the manifest lists, each checked against its sha256."""
  contents = {}
  for name, entry in manifest.files.items():
    file_path = os.path.join(path, name)
    try:
      with open(file_path, "rb") as f:
        content = f.read()
    except OSError as e:
      raise VersionError(f"version {version}: cannot read {file_path}: {e}") from e
    sha256 = hashing.sha256_bytes(content)
    if sha256 != entry.sha256:
      raise VersionError(f"version {version}: {name} has sha256 {sha256}, the manifest says "
                         f"{entry.sha256}: refusing a file that is not the pushed one")
    contents[name] = content
  return contents


def load_version(destination: str, version: int,
                 delegate_loader: Callable[[], Any] = load_edgetpu_delegate) -> LoadedModel:
  """Verifies DEST/<version> against its manifest and loads it; raises VersionError."""
  path = os.path.join(destination, str(version))
  manifest = _read_manifest(path, version)
  contents = _read_verified_files(path, version, manifest)
  model_content = contents[push_manifest.MODEL_FILE]

  device, reason, make = CPU, "no Edge TPU model in this version", None
  edgetpu_content = contents.get(push_manifest.EDGETPU_MODEL_FILE)
  if edgetpu_content is not None:
    try:
      delegate = delegate_loader()
      int8_runtime.Int8Classifier(edgetpu_content, delegates=[delegate])

      def make():
        return int8_runtime.Int8Classifier(edgetpu_content, delegates=[delegate])
      device, reason = EDGETPU, f"{push_manifest.EDGETPU_MODEL_FILE} on {EDGETPU_LIBRARY}"
    except (ValueError, OSError, RuntimeError) as e:
      reason = (f"{push_manifest.EDGETPU_MODEL_FILE} present but the Edge TPU delegate "
                f"{EDGETPU_LIBRARY} did not load ({e}); running {push_manifest.MODEL_FILE} "
                "on the CPU")
      logging.warning("Version %d: %s", version, reason)
  if make is None:
    def make():
      return int8_runtime.Int8Classifier(model_content, num_threads=1)
  try:
    loaded = LoadedModel(version=version, path=path, manifest=manifest, device=device,
                         device_reason=reason, _make=make)
    with loaded.classifier() as classifier:  # Loads one interpreter and runs one image.
      probabilities = classifier.predict_pixels(np.zeros((1,) + classifier.example_shape))
  except ValueError as e:  # Int8ModelError, or LiteRT refusing the flatbuffer.
    raise VersionError(f"version {version}: {push_manifest.MODEL_FILE} does not load: {e}") \
        from e
  if probabilities.shape != (1, len(loaded.labels)):
    raise VersionError(f"version {version}: the model outputs {probabilities.shape[1:]}, the "
                       f"manifest has {len(loaded.labels)} labels")
  return loaded


class ModelStore:
  """The version being served, replaced when a newer good version appears under DEST.

  `current` is swapped atomically (one attribute); callers take it once per request.
  """

  def __init__(self, destination: str, pinned_version: Optional[int] = None,
               poll_seconds: float = DEFAULT_POLL_SECONDS,
               delegate_loader: Callable[[], Any] = load_edgetpu_delegate):
    self.destination = destination
    self.pinned_version = pinned_version
    self.poll_seconds = poll_seconds
    self.current: Optional[LoadedModel] = None
    self.failures: Dict[int, str] = {}  # version -> why it is not served
    self._delegate_loader = delegate_loader
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  def refresh(self) -> Optional[LoadedModel]:
    """Loads the newest good version newer than the current one (or the pinned one)."""
    with self._lock:
      published = list_versions(self.destination)
      if self.pinned_version is not None:
        candidates = [v for v in published if v == self.pinned_version]
      else:
        floor = self.current.version if self.current else 0
        candidates = [v for v in reversed(published) if v > floor]
      for version in candidates:
        if version in self.failures or (self.current and self.current.version == version):
          continue
        try:
          loaded = load_version(self.destination, version, self._delegate_loader)
        except VersionError as e:
          self.failures[version] = str(e)
          logging.error("Not serving %s", e)
          continue
        previous, self.current = self.current, loaded
        logging.info("Serving version %d (%s) from %s%s.", version, loaded.device,
                     loaded.path, f", replacing {previous.version}" if previous else "")
        break
      return self.current

  def start(self) -> None:
    """Loads what is there, then polls DEST every `poll_seconds` in a daemon thread."""
    self.refresh()
    if self._thread is not None:
      return
    self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
    self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None

  def _poll(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      try:
        self.refresh()
      except Exception:  # A flaky filesystem must not end polling; the last good one serves.
        logging.exception("Polling %s failed", self.destination)
