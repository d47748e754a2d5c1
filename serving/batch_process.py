"""The batch process: parses, predicts and renders big requests away from the event loop's GIL.

A 256-image JSON batch holds the GIL for milliseconds at a time (orjson parsing the body, numpy
turning 200,000 Python numbers into an array); in a thread of the server's process that stalls the
event loop, and so every health check and single image behind it (measured: /healthz fell from
8,000 to 350 requests/s, p99 4 -> 70 ms, while two clients sent such batches). So each worker
process hands batches for a CPU version to one child process of its own (started with `spawn`:
the server's threads must not be forked), which loads the same version from disk, checks it is
the same bytes (the manifest's sha256) and runs the request's parse -> predict -> render job,
at a lower priority than the server (NICENESS).
A version on the Edge TPU stays in the server's process: the device serves one process at a time.
"""

import dataclasses
import os
import signal
import threading
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from core import push_manifest
from serving import asgi
from serving import model_store

NICENESS = 5
_loaded: Dict["ModelRef", model_store.LoadedModel] = {}


@dataclasses.dataclass(frozen=True)
class ModelRef:
  """A served version as the batch process finds it: where, which, and its model's sha256."""
  destination: str
  version: int
  sha256: str

  @classmethod
  def of(cls, destination: str, loaded: model_store.LoadedModel) -> "ModelRef":
    return cls(destination, loaded.version,
               loaded.manifest.files[push_manifest.MODEL_FILE].sha256)


def _not_here(path: str, library: str) -> Optional[str]:
  del path
  return f"the batch process runs the CPU model ({library} belongs to the server's process)"


def _model(ref: ModelRef) -> model_store.LoadedModel:
  loaded = _loaded.get(ref)
  if loaded is None:
    loaded = model_store.load_version(ref.destination, ref.version, probe=_not_here)
    sha256 = loaded.manifest.files[push_manifest.MODEL_FILE].sha256
    if sha256 != ref.sha256:
      raise model_store.VersionError(f"version {ref.version} changed on disk (sha256 {sha256}, "
                                     f"served {ref.sha256})")
    _loaded.clear()  # One version at a time.
    _loaded[ref] = loaded
  return loaded


def run(ref: ModelRef, job: Callable) -> Tuple[asgi.Response, int]:
  """(the response of job(predict), images predicted) in the batch process.

  `job(predict)` is a picklable parse -> predict -> render step of an API; predict(pixels) returns
  a model_store.Prediction.
  """
  loaded = _model(ref)
  images = [0]

  def predict(pixels: np.ndarray) -> model_store.Prediction:
    images[0] += len(pixels)
    return loaded.classify(pixels)
  try:
    return job(predict), images[0]
  except asgi.ApiError as error:  # Exceptions with extra arguments do not pickle back.
    return asgi.error_response(error.status, error.message), images[0]


def start() -> None:
  """The process's initializer: below the server's priority (os.nice), so that when the cores are
  busy the kernel runs health checks and single images before batch work; deaf to SIGINT, which
  Ctrl-C sends to the terminal's whole process group (the server shuts the pool down when it
  stops: a KeyboardInterrupt here only printed a traceback); and gone when the server's process is
  (killed, it cannot shut the pool down: the process would be orphaned)."""
  os.nice(NICENESS)
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  parent = os.getppid()

  def exit_with_the_parent() -> None:
    while os.getppid() == parent:
      time.sleep(1)
    os._exit(0)  # pylint: disable=protected-access
  threading.Thread(target=exit_with_the_parent, name="parent-watch", daemon=True).start()
