"""Runs the ASGI app on Granian, a Rust HTTP server (github.com/emmett-framework/granian).

Why Granian rather than uvicorn: uvicorn has no timeout for reading a request's headers, so a
client that connects and sends nothing, or trickles its headers a byte at a time (slowloris),
holds a connection for ever; Granian's HTTP/1 `header_read_timeout` closes it. The body has the
app's own deadline (serving/asgi.py `BodyDeadlines`), idle keep-alive connections Granian's.
Granian also parses HTTP in Rust, off the GIL, and runs the app in worker processes it supervises.

A worker is a process with its own model store (and poller): it loads the same versions from
the same directory, so several workers serve the same version but may switch to a new one up to a
poll interval apart, and each counts its own /metrics.
"""

import dataclasses
import functools
import os
import tempfile
from typing import Any, Optional

from serving import model_store

DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0  # For a request's headers, and again for its body.
MAX_REQUEST_TIMEOUT_SECONDS = 60.0  # Granian's limit for the header read timeout.


@dataclasses.dataclass(frozen=True)
class Options:
  destination: str
  pinned_version: Optional[int]
  poll_seconds: float
  host: str
  port: int
  request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
  workers: int = 1


def _worker_app(options: Options, target: str) -> Any:
  """The app of one worker process, over a model store of its own (polling in its thread)."""
  del target  # Granian's target string: the app is built here instead of imported by name.
  from serving import app as app_lib  # pylint: disable=import-outside-toplevel  # FastAPI: slow.
  store = model_store.ModelStore(options.destination, pinned_version=options.pinned_version,
                                 poll_seconds=options.poll_seconds)
  store.start()
  return app_lib.create_app(store, options.request_timeout)


def run(options: Options) -> None:
  """Serves until SIGINT/SIGTERM (Granian stops the workers and returns)."""
  if options.workers == 1:
    _serve(options)
    return
  # Several workers: their Prometheus counters go to files in a directory of this run's, which
  # must be set before the workers import prometheus_client (serving/context.py).
  with tempfile.TemporaryDirectory(prefix="mnist-serving-metrics-") as directory:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
      _serve(options)
    finally:
      del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _serve(options: Options) -> None:
  from granian import Granian  # pylint: disable=import-outside-toplevel
  from granian import constants  # pylint: disable=import-outside-toplevel
  from granian import http  # pylint: disable=import-outside-toplevel
  from granian import log  # pylint: disable=import-outside-toplevel
  server = Granian(
      "serving.app:create_app", address=options.host, port=options.port,
      interface=constants.Interfaces.ASGI, workers=options.workers,
      # HTTP/1.1 only: with HTTP/2 detection ("auto") the header timeout does not cover a
      # connection that sends nothing at all.
      http=constants.HTTPModes.http1,
      http1_settings=http.HTTP1Settings(
          header_read_timeout=max(1, round(options.request_timeout * 1000))),
      log_level=log.LogLevels.warning, log_access=False)
  server.serve(target_loader=functools.partial(_worker_app, options))
