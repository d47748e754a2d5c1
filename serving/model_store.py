"""Finds, verifies and loads pushed versions; keeps serving the newest good one (no TensorFlow).

A pushed version is DEST/<version>/ (core/versions.py: integer names only, the
`.incomplete-push-*` directories of pushes in progress are never versions) holding the files of
core/push_manifest.py: `model.tflite`, optionally `model_edgetpu.tflite`, and the manifest
`model.json` with every file's sha256 and size. A version is served only after each file listed
in the manifest matched its size and sha256 and the interpreter ran one image.

What happens when things go wrong (each replayed from a public report in
tests/serving_faults_test.py):
  * A version that fails is skipped: `failures` holds the reason (the status endpoint and
    /metrics show it) and the last good version keeps serving. It is tried again when any of its
    files changes (name, size or modification time): a version seen while still being copied by
    a tool that does not publish atomically (gsutil, kubectl cp, a storage initializer) loads once
    complete (TF Serving #1086 marks such a version failed for good).
  * When DEST disappears, empties or no longer holds the served version (TF Serving #1480: nothing
    said so), `destination_problem` says what is wrong (status, /metrics, one log line), the
    served version keeps serving from memory, and whatever DEST holds when it returns is served,
    even a lower version number (DEST re-created from scratch restarts at 1).
  * `model.tflite` compiled for the Edge TPU (holding `edgetpu-custom-op`, google-coral/tflite#2)
    is skipped with that reason; it used to raise a RuntimeError nobody caught.
  * `model_edgetpu.tflite` runs on the Edge TPU only after serving/edgetpu_probe.py ran it in a
    child process: a `libedgetpu.so.1` that is not LiteRT's plugin, or one that crashes, leaves
    the CPU model serving with the reason in `device_reason`.

Paths: DEST is a local directory, read with os, so serving never imports TensorFlow (the serving
image has none). A destination in object storage is copied to a local directory first, as KServe's
storage initializer does (or `gsutil rsync`).
"""

import contextlib
import dataclasses
import os
import queue
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from absl import logging
import numpy as np

from core import contract
from core import hashing
from core import int8_runtime
from core import push_manifest
from core import versions
from serving import edgetpu_probe

EDGETPU_LIBRARY = "libedgetpu.so.1"  # Coral's runtime (libedgetpu1-std / -max).
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"  # What edgetpu_compiler puts in the graph.
CPU = "cpu"
EDGETPU = "edgetpu"
DEFAULT_POLL_SECONDS = 2.0
Fingerprint = Tuple[Tuple[str, int, int], ...]  # (name, size, mtime_ns) of each file.
Probe = Callable[[str, str], Optional[str]]


class VersionError(ValueError):
  """A pushed version cannot be served: missing or mismatching file, bad manifest or model."""


def fingerprint(path: str) -> Fingerprint:
  """(name, size, mtime_ns) of each file in the directory `path`; () when it cannot be read."""
  try:
    entries = list(os.scandir(path))
  except OSError:
    return ()
  files = []
  for entry in entries:
    with contextlib.suppress(OSError):
      stat = entry.stat()
      files.append((entry.name, stat.st_size, stat.st_mtime_ns))
  return tuple(sorted(files))


def load_edgetpu_delegate() -> Any:
  """The Edge TPU delegate; raises ValueError/OSError when the library or device is missing."""
  from ai_edge_litert.interpreter import load_delegate
  return load_delegate(EDGETPU_LIBRARY)


@dataclasses.dataclass(frozen=True)
class Prediction:
  version: int
  device: str
  probabilities: np.ndarray  # float32 [N, classes]
  classes: np.ndarray  # int64 [N]
  labels: List[str]  # [N]


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
  _pixel_table: Optional[np.ndarray] = None
  _output_table: Optional[Tuple[int, np.ndarray]] = None

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

  def _quantize(self, classifier: int8_runtime.Int8Classifier, pixels: np.ndarray) -> np.ndarray:
    """The model's input for pixels 0-255; integer pixels through a table of the 256 levels,
    computed once with the classifier's own quantize_pixels (so the same numbers, 30x faster)."""
    if pixels.dtype.kind not in "iu":
      return classifier.quantize_pixels(pixels)
    if self._pixel_table is None:
      levels = np.resize(np.arange(contract.MAX_PIXEL_VALUE + 1), contract.NUM_PIXELS)
      self._pixel_table = classifier.quantize_pixels(levels).ravel()[:contract.MAX_PIXEL_VALUE + 1]
    return self._pixel_table[pixels].reshape((-1,) + classifier.example_shape)

  def _dequantize(self, classifier: int8_runtime.Int8Classifier,
                  outputs: np.ndarray) -> np.ndarray:
    """Probabilities float32 of the model's integer outputs, through a table of every level made
    once with the classifier's own dequantize (the same numbers, without four array passes)."""
    if self._output_table is None:
      info = np.iinfo(outputs.dtype)
      levels = np.arange(info.min, info.max + 1).astype(outputs.dtype)
      self._output_table = (int(info.min), classifier.dequantize(levels))
    lowest, table = self._output_table
    return table[outputs.astype(np.intp) - lowest]

  def predict_pixels(self, pixels: np.ndarray) -> np.ndarray:
    """Probabilities float32 [N, classes] for pixels 0-255 [N, 28, 28] (or [N, 784])."""
    with self.classifier() as classifier:
      quantized = self._quantize(classifier, pixels)
      if self.device == EDGETPU:  # The compiled model has a static batch of 1.
        outputs = np.concatenate([classifier.invoke_quantized(image[None])
                                  for image in quantized])
      else:
        outputs = classifier.invoke_quantized(quantized)
      return self._dequantize(classifier, outputs)

  def classify(self, pixels: np.ndarray) -> Prediction:
    """The probabilities, top classes and their labels of checked pixels [N, 28, 28] (0-255)."""
    probabilities = self.predict_pixels(pixels)
    classes = probabilities.argmax(axis=1)
    labels = self.manifest.labels
    return Prediction(self.version, self.device, probabilities, classes,
                      [labels[k] for k in classes])

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


_RETRIED = "retried when its files change"


def _read_manifest(path: str, version: int) -> push_manifest.PushManifest:
  manifest_path = os.path.join(path, push_manifest.FILE_NAME)
  if not os.path.exists(manifest_path):
    raise VersionError(f"version {version}: {push_manifest.FILE_NAME} is missing (incomplete: "
                       f"still being copied?; {_RETRIED})")
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
  """{name: content} of every file the manifest lists, each checked against its size and sha256."""
  contents = {}
  for name, entry in manifest.files.items():
    file_path = os.path.join(path, name)
    try:
      with open(file_path, "rb") as f:
        content = f.read()
    except FileNotFoundError as e:
      raise VersionError(f"version {version}: {name} is missing (incomplete: still being "
                         f"copied?; {_RETRIED})") from e
    except OSError as e:
      raise VersionError(f"version {version}: cannot read {file_path}: {e}") from e
    if len(content) != entry.size_bytes:
      raise VersionError(f"version {version}: {name} has {len(content):,} of the "
                         f"{entry.size_bytes:,} bytes the manifest lists (incomplete: still "
                         f"being copied?; {_RETRIED})")
    sha256 = hashing.sha256_bytes(content)
    if sha256 != entry.sha256:
      raise VersionError(f"version {version}: {name} has sha256 {sha256}, the manifest says "
                         f"{entry.sha256}: refusing a file that is not the pushed one")
    contents[name] = content
  return contents


def _edgetpu_maker(path: str, version: int, content: bytes,
                   probe: Probe) -> Tuple[Optional[Callable[[], int8_runtime.Int8Classifier]], str]:
  """(a maker of Edge TPU classifiers or None, the device reason) for model_edgetpu.tflite."""
  problem = probe(os.path.join(path, push_manifest.EDGETPU_MODEL_FILE), EDGETPU_LIBRARY)
  if problem is None:
    try:  # The probe ran the same in a child process; this should not fail, but must not kill.
      delegate = load_edgetpu_delegate()
      int8_runtime.Int8Classifier(content, delegates=[delegate])

      def make():
        return int8_runtime.Int8Classifier(content, delegates=[delegate])
      return make, f"{push_manifest.EDGETPU_MODEL_FILE} on {EDGETPU_LIBRARY}"
    except Exception as e:  # pylint: disable=broad-except  # Any failure: the CPU model serves.
      problem = f"the Edge TPU delegate {EDGETPU_LIBRARY} failed in the server ({e})"
  reason = (f"{push_manifest.EDGETPU_MODEL_FILE} present but {problem}; running "
            f"{push_manifest.MODEL_FILE} on the CPU")
  logging.warning("Version %d: %s", version, reason)
  return None, reason


def _model_error(version: int, error: Exception) -> VersionError:
  message = " ".join(str(error).split())
  if EDGETPU_CUSTOM_OP in message:
    return VersionError(
        f"version {version}: {push_manifest.MODEL_FILE} holds the Edge TPU's custom operator "
        f"{EDGETPU_CUSTOM_OP}: it is edgetpu_compiler's output, which runs only with the Edge "
        f"TPU delegate; {push_manifest.MODEL_FILE} must be the CPU int8 model (the compiled one "
        f"goes in {push_manifest.EDGETPU_MODEL_FILE})")
  return VersionError(f"version {version}: {push_manifest.MODEL_FILE} does not load: {message}")


def load_version(destination: str, version: int,
                 probe: Probe = edgetpu_probe.probe) -> LoadedModel:
  """Verifies DEST/<version> against its manifest and loads it; raises VersionError."""
  path = os.path.join(destination, str(version))
  manifest = _read_manifest(path, version)
  contents = _read_verified_files(path, version, manifest)
  model_content = contents[push_manifest.MODEL_FILE]
  make, reason = None, "no Edge TPU model in this version"
  if push_manifest.EDGETPU_MODEL_FILE in contents:
    make, reason = _edgetpu_maker(path, version, contents[push_manifest.EDGETPU_MODEL_FILE],
                                  probe)
  device = CPU if make is None else EDGETPU
  if make is None:
    def make():
      return int8_runtime.Int8Classifier(model_content, num_threads=1)
  try:
    loaded = LoadedModel(version=version, path=path, manifest=manifest, device=device,
                         device_reason=reason, _make=make)
    with loaded.classifier() as classifier:  # Loads one interpreter and runs one image.
      probabilities = loaded.predict_pixels(np.zeros((1,) + classifier.example_shape, np.uint8))
  except (ValueError, RuntimeError) as e:  # Int8ModelError, LiteRT refusing the model or an op.
    raise _model_error(version, e) from e
  if probabilities.shape != (1, len(loaded.labels)):
    raise VersionError(f"version {version}: the model outputs {probabilities.shape[1:]}, the "
                       f"manifest has {len(loaded.labels)} labels")
  return loaded


class ModelStore:
  """The version being served, replaced when a newer good version appears under DEST.

  `current` is swapped atomically (one attribute); callers take it once per request.
  `failures` (version -> why it is skipped) and `destination_problem` (None, or what is wrong with
  DEST) are for the status endpoint and the metrics. A long-running store also logs a change of
  `destination_problem` (`log_destination`); a one-shot caller (`predict`) reports it itself.
  """

  def __init__(self, destination: str, pinned_version: Optional[int] = None,
               poll_seconds: float = DEFAULT_POLL_SECONDS, probe: Probe = edgetpu_probe.probe,
               log_destination: bool = True):
    self.destination = destination
    self.log_destination = log_destination
    self.pinned_version = pinned_version
    self.poll_seconds = poll_seconds
    self.current: Optional[LoadedModel] = None
    self.failures: Dict[int, str] = {}
    self.destination_problem: Optional[str] = None
    self._probe = probe
    self._served_fingerprint: Fingerprint = ()
    self._failed_fingerprints: Dict[int, Fingerprint] = {}
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  def _scan(self) -> Tuple[Dict[int, Fingerprint], Optional[str]]:
    """({version: fingerprint} under DEST, what is wrong with DEST or None)."""
    try:
      found = {v: fingerprint(os.path.join(self.destination, str(v)))
               for v in versions.versions(os.listdir(self.destination))}
    except OSError as e:
      return {}, f"the push destination {self.destination} cannot be read ({e})"
    return found, None if found else f"the push destination {self.destination} holds no version"

  def _note(self, found: Dict[int, Fingerprint], problem: Optional[str]) -> None:
    """Sets `destination_problem` (also when DEST no longer holds the served version); logs it
    once when it changes."""
    served = self.current
    if found and served and served.version not in found and self.pinned_version is None:
      problem = (f"version {served.version}, which is being served, is no longer in "
                 f"{self.destination}")
    if problem != self.destination_problem and self.log_destination:
      if problem:
        logging.warning("%s%s.", problem, f"; still serving version {served.version} from memory"
                        if served else "")
      elif self.destination_problem:
        logging.info("The push destination %s is back.", self.destination)
    self.destination_problem = problem

  def _candidates(self, found: Dict[int, Fingerprint]) -> List[int]:
    """Versions to try, newest first: newer than the served one while it is still in DEST
    unchanged, else all of them; never a failed version whose files did not change."""
    if self.pinned_version is not None:
      candidates = [self.pinned_version] if self.pinned_version in found else []
    else:
      served = self.current
      intact = served is not None and found.get(served.version) == self._served_fingerprint
      floor = served.version if intact else 0
      candidates = [v for v in sorted(found, reverse=True) if v > floor]
    if self.current is not None and found.get(self.current.version) == self._served_fingerprint:
      candidates = [v for v in candidates if v != self.current.version]
    return [v for v in candidates if self._failed_fingerprints.get(v) != found[v]]

  def refresh(self) -> Optional[LoadedModel]:
    """Loads the newest good version (or the pinned one) when it is not the one served."""
    with self._lock:
      found, problem = self._scan()
      for version in self._candidates(found):
        try:
          loaded = load_version(self.destination, version, self._probe)
        except VersionError as e:
          if self.failures.get(version) != str(e):
            logging.error("Not serving %s", e)
          self.failures[version] = str(e)
          self._failed_fingerprints[version] = found[version]
          continue
        self.failures.pop(version, None)
        self._failed_fingerprints.pop(version, None)
        previous, self.current = self.current, loaded
        self._served_fingerprint = found[version]
        logging.info("Serving version %d (%s) from %s%s.", version, loaded.device,
                     loaded.path, f", replacing {previous.version}" if previous else "")
        break
      for version in set(self.failures) - set(found):  # Gone: forget, retry if it returns.
        del self.failures[version]
        self._failed_fingerprints.pop(version, None)
      self._note(found, problem)
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
      except Exception as e:  # pylint: disable=broad-except  # The last good one keeps serving.
        logging.error("Polling %s failed: %s: %s", self.destination, type(e).__name__, e)
