"""The lean HTTP layer of the hot routes: raw ASGI requests and responses, errors as JSON.

The hot routes (`:predict`, the Open Inference Protocol's `infer`, the health probes) are plain
ASGI callables `handler(request) -> Response` dispatched by `serving.app` before FastAPI: FastAPI's
routing, middleware and dependency machinery cost about 40 µs per request even for a raw route
(and each route it tries before the match about 7 µs more), a fifth of a single-image prediction.
The cold routes (metadata, status, the page, uploads, /metrics, /docs) stay on FastAPI.

ASGI: https://asgi.readthedocs.io/en/latest/specs/www.html (the HTTP connection scope, the
`http.request` and `http.response.*` messages).
"""

import asyncio
import dataclasses
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import orjson
from starlette import responses as starlette_responses

JSON = b"application/json"
BODY_TIMEOUT_SECONDS = 10.0  # The whole body must arrive within this after the headers.


class ApiError(Exception):
  """A request the server answers with an error: HTTP `status` and a message naming the problem.

  Rendered as {"error": message}, the error shape both TF Serving's REST API and the Open
  Inference Protocol use.
  """

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


@dataclasses.dataclass
class Request:
  """What a hot handler sees: the method, path, lower-cased headers, the whole body, path params."""
  method: str
  path: str
  headers: Dict[bytes, bytes]
  body: bytes
  params: Dict[str, str]

  def header(self, name: bytes) -> Optional[str]:
    value = self.headers.get(name)
    return value.decode("latin-1") if value is not None else None

  @property
  def media_type(self) -> str:
    value = self.headers.get(b"content-type", b"")
    if value == JSON:  # The common case, without decoding.
      return "application/json"
    return value.decode("latin-1").split(";")[0].strip().lower()


@dataclasses.dataclass
class Response:
  status: int
  body: bytes
  content_type: bytes = JSON
  headers: Tuple[Tuple[bytes, bytes], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]


def json_response(content: Any, status: int = 200) -> Response:
  """`content` as JSON (orjson; numpy arrays allowed)."""
  return Response(status, orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY))


def starlette_json(content: Any, status: int = 200) -> starlette_responses.Response:
  """`content` as JSON for a FastAPI route (orjson, numpy arrays allowed)."""
  return starlette_responses.Response(
      orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
      media_type="application/json")


CLOSE = ((b"connection", b"close"),)  # After a 408: the rest of the body may still be coming.


def error_response(status: int, message: str) -> Response:
  return Response(status, orjson.dumps({"error": message}), headers=CLOSE if status == 408 else ())


async def send_response(send, response: Response) -> None:
  headers: List[Tuple[bytes, bytes]] = [(b"content-type", response.content_type),
                                        (b"content-length", str(len(response.body)).encode())]
  headers.extend(response.headers)
  await send({"type": "http.response.start", "status": response.status, "headers": headers})
  await send({"type": "http.response.body", "body": response.body})


class BodyDeadlines:
  """Ends body reads that outlast `timeout` seconds (slowloris: a client trickling its body, or
  sending headers and no body, would otherwise hold its connection and buffer forever).

  One sweep per SWEEP_SECONDS over the reads in progress cancels the overdue ones, instead of a
  timer per request (asyncio.wait_for costs about 15 µs a request, a tenth of a prediction). The
  HTTP server bounds the headers (serving/server.py).
  """
  SWEEP_SECONDS = 0.5

  def __init__(self, timeout: float = BODY_TIMEOUT_SECONDS):
    self.timeout = timeout
    self._reads: Dict[asyncio.Task, float] = {}
    self._expired: set = set()
    self._armed = False

  def watch(self) -> None:
    """Starts the clock for the current task's body read."""
    task = asyncio.current_task()
    if task in self._reads:
      return
    loop = asyncio.get_running_loop()
    self._reads[task] = loop.time() + self.timeout
    if not self._armed:
      self._armed = True
      loop.call_later(self.SWEEP_SECONDS, self._sweep, loop)

  def done(self) -> None:
    """The current task's body has arrived (or the request ended)."""
    task = asyncio.current_task()
    self._reads.pop(task, None)
    self._expired.discard(task)

  def timed_out(self) -> bool:
    return asyncio.current_task() in self._expired

  def _sweep(self, loop) -> None:
    now = loop.time()
    for task, deadline in list(self._reads.items()):
      if deadline <= now and task not in self._expired:
        self._expired.add(task)
        task.cancel()
    self._armed = bool(self._reads)
    if self._armed:
      loop.call_later(self.SWEEP_SECONDS, self._sweep, loop)

  def timeout_error(self) -> "ApiError":
    return ApiError(408, f"the request body did not arrive within {self.timeout:g} s")


async def read_body(receive, max_bytes: int, deadlines: BodyDeadlines) -> bytes:
  """The whole request body; raises ApiError 413 past `max_bytes`, 408 past the deadline."""
  deadlines.watch()
  try:
    message = await receive()
    body = message.get("body", b"")
    if message.get("more_body", False):
      parts, more = [body], True
      size = len(body)
      while more and size <= max_bytes:
        message = await receive()
        if message["type"] == "http.disconnect":
          raise ApiError(400, "the client closed the connection before sending the whole body")
        parts.append(message.get("body", b""))
        size += len(parts[-1])
        more = message.get("more_body", False)
      body = b"".join(parts)
  except asyncio.CancelledError:
    if deadlines.timed_out():
      raise deadlines.timeout_error() from None
    raise
  finally:
    deadlines.done()
  if len(body) > max_bytes:
    raise ApiError(413, f"request body is over the {max_bytes:,}-byte limit")
  return body


def receive_with_deadline(receive, deadlines: BodyDeadlines):
  """`receive` for the FastAPI routes, whose body reads (uploads) get the same deadline."""

  async def receive_body():
    deadlines.watch()
    try:
      message = await receive()
    except asyncio.CancelledError:
      if deadlines.timed_out():
        raise deadlines.timeout_error() from None
      raise
    if message["type"] != "http.request" or not message.get("more_body", False):
      deadlines.done()
    return message
  return receive_body


def scope_headers(scope) -> Dict[bytes, bytes]:
  """The request headers, names lower-cased (ASGI servers send them so), the last of repeats."""
  return dict(scope["headers"])
