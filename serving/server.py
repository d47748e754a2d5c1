"""Runs the ASGI app on uvicorn (uvloop + httptools), with a deadline for each request's headers.

uvicorn closes a keep-alive connection that stays idle after a response (`timeout_keep_alive`),
but has no timeout before that: a client that connects and sends nothing, or trickles its headers
a byte at a time (slowloris), holds a connection and its buffers for ever.
serving/http_protocol.py (uvicorn's own HTTP/1.1 protocol class, which its Config takes as
`http`, with a deadline) closes a connection
whose request headers are not complete `request_timeout` seconds after the connection opened or
the request's first byte arrived; the body has the app's own deadline (serving/asgi.py
`BodyDeadlines`).

Why not Granian, whose Rust server has such a header timeout built in: measured here it spent
about 100 µs more CPU per single-image request than uvicorn with httptools (310-340 against
190-230 µs in the server, same app, same machine minutes apart; BENCHMARKS.md, "Serving"), a third
of the whole request.

Workers: with `workers` > 1 uvicorn's process supervisor spawns them on one shared socket; each has
its own model store (and poller) over the same directory, so they serve the same version but may
switch to a new one up to a poll interval apart, and /metrics sums their counters
(prometheus_client's multiprocess mode, serving/context.py).
"""

import dataclasses
import functools
import os
import tempfile
from typing import Any, Optional

from serving import model_store

DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0  # For a request's headers, and again for its body.
MAX_REQUEST_TIMEOUT_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class Options:
  destination: str
  pinned_version: Optional[int]
  poll_seconds: float
  host: str
  port: int
  request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
  workers: int = 1


def _worker_app(options: Options) -> Any:
  """The app of one worker, over a model store of its own (polling in its thread)."""
  from serving import app as app_lib  # pylint: disable=import-outside-toplevel  # FastAPI: slow.
  store = model_store.ModelStore(options.destination, pinned_version=options.pinned_version,
                                 poll_seconds=options.poll_seconds)
  store.start()
  return app_lib.create_app(store, options.request_timeout)


def run(options: Options) -> None:
  """Serves until SIGINT (Ctrl-C) or SIGTERM, then shuts down gracefully.

  After a SIGINT, uvicorn's single-worker server raises it again once shut down (so the default
  handler ends the process): a KeyboardInterrupt out of this call, which callers catch."""
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
  import uvicorn  # pylint: disable=import-outside-toplevel  # Not for --help.
  from uvicorn import supervisors  # pylint: disable=import-outside-toplevel

  from serving import http_protocol  # pylint: disable=import-outside-toplevel
  config = uvicorn.Config(
      functools.partial(_worker_app, options), factory=True, host=options.host,
      port=options.port, http=http_protocol.HeaderDeadlineProtocol, loop="uvloop", lifespan="on",
      timeout_keep_alive=options.request_timeout, workers=options.workers,
      log_level="warning", access_log=False)
  if options.workers == 1:
    uvicorn.Server(config).run()
  else:
    supervisors.Multiprocess(config, sockets=[config.bind_socket()]).run()
