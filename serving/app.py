"""The model server's ASGI app: TF Serving's REST API, the Open Inference Protocol, the service
routes (page, health, metrics), over one model store.

Shape (FastAPI's "Bigger Applications": one router per API):
  serving/tf_serving_api.py   /v1/models/mnist...            TensorFlow Serving's REST API
  serving/open_inference.py   /v2...                          Open Inference Protocol (KServe V2)
  this module                 / /healthz /readyz /metrics     the page and the service routes
Each API parses, predicts and renders in separate steps, as TF Serving's REST handler does.

Hot and cold routes: `ServingApp` answers the hot routes itself, as raw ASGI (serving/asgi.py),
and hands everything else to FastAPI, which documents both (its /openapi.json merges the hot
routes' path items).

Where each route runs (serving/context.py says why):
  event loop, inline   POST :predict and /infer with a body up to 16 kB (single images, small
                       batches); GET /healthz, /v2/health/*, /readyz, status, metadata, /metrics
  the batch process    POST :predict and /infer with bigger bodies (batches) on a CPU version
  the batch thread     the :classify_image upload (Pillow decoding and resampling); batches on
                       an Edge TPU version
  the poller thread    the model store looking for new versions (serving/model_store.py)

Every error is JSON {"error": "<what is wrong>"} with a 4xx status (5xx: 503 when no model is
loaded, 501 for uploads without python-multipart, 500 for a bug, logged with its traceback).
Request bodies are parsed by hand rather than by pydantic models: the checks name the problem in
the user's terms (which instance, which shape, which value); the OpenAPI document states the schema.
"""

import asyncio
import importlib.resources
import re
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from absl import logging
import fastapi
from fastapi import responses
from fastapi.openapi import utils as openapi_utils
import prometheus_client
from starlette import exceptions as starlette_exceptions
from starlette import routing as starlette_routing

from serving import asgi
from serving import context
from serving import model_store
from serving import open_inference
from serving import tf_serving_api

# Re-exported: the paths tests, the page and clients use.
MODEL_PATH = tf_serving_api.MODEL_PATH
PREDICT_PATH = tf_serving_api.PREDICT_PATH
CLASSIFY_IMAGE_PATH = tf_serving_api.CLASSIFY_IMAGE_PATH
METADATA_PATH = tf_serving_api.METADATA_PATH
MAX_BODY_BYTES = 8 * 1024 * 1024  # A phone photo fits; larger bodies get 413 before parsing.
_MODEL_IN_PATH = re.compile(r"^/v[12]/models/([^/:]+)")
UNROUTED = "other"  # The metrics' endpoint label of a request no route matched (404).


def _service_router(ctx: context.Context) -> fastapi.APIRouter:
  """The drawing page, readiness and the Prometheus metrics (/healthz is a hot route)."""
  router = fastapi.APIRouter(tags=["service"])
  page = importlib.resources.files("serving").joinpath("page.html").read_text("utf-8")

  @router.get("/", response_class=responses.HTMLResponse, include_in_schema=False)
  async def index():
    return responses.HTMLResponse(page)

  @router.get("/readyz", summary="A verified model version is loaded (503 until then).",
              responses={"503": tf_serving_api.ERROR_RESPONSE})
  async def readyz():
    loaded = ctx.served()
    return asgi.starlette_json({"status": "ready", "version": loaded.version,
                                "device": loaded.device})

  @router.get("/metrics", summary="Prometheus metrics.", response_class=responses.PlainTextResponse)
  async def metrics_endpoint():
    return responses.Response(prometheus_client.generate_latest(ctx.metrics.registry),
                              media_type=prometheus_client.CONTENT_TYPE_LATEST)

  return router


async def _healthz(request: asgi.Request) -> asgi.Response:
  del request
  return asgi.Response(200, b'{"status":"ok"}')


_HEALTHZ_OPENAPI = {"get": {"summary": "The process is up.", "tags": ["service"],
                            "responses": {"200": {"description": "{\"status\": \"ok\"}"}}}}


def _add_error_handlers(app: fastapi.FastAPI) -> None:
  """Every error of the FastAPI routes as JSON {"error": "..."}."""

  @app.exception_handler(asgi.ApiError)
  async def api_error(request, error: asgi.ApiError):
    del request
    response = asgi.error_response(error.status, error.message)
    return responses.Response(response.body, response.status, {
        k.decode(): v.decode() for k, v in response.headers}, media_type="application/json")

  @app.exception_handler(starlette_exceptions.HTTPException)
  async def http_error(request, error):
    message = str(error.detail)
    if error.status_code == 404:
      model = _MODEL_IN_PATH.match(request.url.path)
      message = (f"unknown model {model.group(1)!r}: this server serves "
                 f"'{tf_serving_api.MODEL_NAME}'" if model and
                 model.group(1) != tf_serving_api.MODEL_NAME else
                 "no such endpoint; the API is listed at /docs and /openapi.json")
    return asgi.starlette_json({"error": message}, error.status_code)

  @app.exception_handler(fastapi.exceptions.RequestValidationError)
  async def validation_error(request, error):
    del request
    return asgi.starlette_json({"error": "; ".join(str(e.get("msg")) for e in error.errors())},
                               400)


def _fastapi_app(ctx: context.Context) -> fastapi.FastAPI:
  app = fastapi.FastAPI(
      title="MNIST Edge TPU model server",
      description="The pushed int8 MNIST model behind TensorFlow Serving's REST API and the "
      "Open Inference Protocol (KServe V2).",
      version=open_inference.SERVER_VERSION, default_response_class=responses.JSONResponse)
  _add_error_handlers(app)
  app.include_router(_service_router(ctx))
  app.include_router(tf_serving_api.router(ctx))
  app.include_router(open_inference.router(ctx))

  def openapi() -> Dict[str, Any]:  # FastAPI's "Extending OpenAPI": add the hot routes.
    if app.openapi_schema is None:
      schema = openapi_utils.get_openapi(title=app.title, version=app.version,
                                         description=app.description, routes=app.routes)
      schema["paths"].update({"/healthz": _HEALTHZ_OPENAPI, **tf_serving_api.openapi_paths(),
                              **open_inference.openapi_paths()})
      app.openapi_schema = schema
    return app.openapi_schema
  app.openapi = openapi
  return app


class HotRoute(NamedTuple):
  """A matched hot route: its handler, the path parameters, and its path template (e.g.
  /v1/models/mnist/versions/{version}:predict), the metrics' endpoint label."""
  handler: asgi.Handler
  params: Dict[str, str]
  template: str


class ServingApp:
  """Pure ASGI: the hot routes answered directly, the rest by FastAPI; for every request the
  413 before reading an oversized body, the body deadline, JSON errors and the metrics."""

  def __init__(self, ctx: context.Context, hot: List[Tuple[str, str, asgi.Handler]],
               body_timeout: float = asgi.BODY_TIMEOUT_SECONDS):
    """`hot`: (method, path template, handler); a template's {name} matches one path segment
    (Starlette's path syntax) and reaches the handler as Request.params[name]."""
    self.ctx = ctx
    self.fastapi = _fastapi_app(ctx)
    self._exact = {(method, path): HotRoute(h, {}, path) for method, path, h in hot
                   if "{" not in path}
    self._patterns = [(method, starlette_routing.compile_path(path)[0], path, h)
                      for method, path, h in hot if "{" in path]
    self._deadlines = asgi.BodyDeadlines(body_timeout)
    self._fixed_paths = {self.fastapi.openapi_url, self.fastapi.docs_url, self.fastapi.redoc_url,
                         self.fastapi.swagger_ui_oauth2_redirect_url} - {None}

  def _endpoint(self, scope, hot: Optional[HotRoute]) -> str:
    """The metrics' endpoint label: the path template of the route that answered, e.g.
    /v1/models/mnist/versions/{version} (bounded values, never a raw path with a version number
    in it); UNROUTED when no route matched. A FastAPI route that matched, fully or but for the
    method (405), is in scope["route"]; FastAPI's own pages (/docs...) are fixed paths."""
    if hot is not None:
      return hot.template
    route = scope.get("route")
    if route is not None:
      return route.path
    return scope["path"] if scope["path"] in self._fixed_paths else UNROUTED

  def _hot(self, method: str, path: str) -> Optional[HotRoute]:
    route = self._exact.get((method, path))
    if route is not None:
      return route
    for route_method, pattern, template, handler in self._patterns:
      match = pattern.match(path) if route_method == method else None
      if match:
        return HotRoute(handler, match.groupdict(), template)
    return None

  async def __call__(self, scope, receive, send) -> None:
    if scope["type"] == "lifespan":
      await self._lifespan(receive, send)
      return
    if scope["type"] != "http":
      await self.fastapi(scope, receive, send)
      return
    start = time.perf_counter()
    status = [500]
    hot = self._hot(scope["method"], scope["path"])

    async def send_recording(message):
      if message["type"] == "http.response.start":
        status[0] = message["status"]
      await send(message)
    try:
      await self._answer(scope, receive, send_recording, hot)
    finally:
      self.ctx.metrics.observe(self._endpoint(scope, hot), status[0], time.perf_counter() - start)

  async def _lifespan(self, receive, send) -> None:
    """ASGI lifespan: nothing to start; at shutdown the batch process and thread stop."""
    while True:
      message = await receive()
      if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
      elif message["type"] == "lifespan.shutdown":
        await asyncio.get_running_loop().run_in_executor(None, self.ctx.close)
        await send({"type": "lifespan.shutdown.complete"})
        return

  async def _answer(self, scope, receive, send, hot: Optional[HotRoute]) -> None:
    headers = asgi.scope_headers(scope)
    started = []

    async def send_tracking(message):
      started.append(True)
      await send(message)
    try:
      length = headers.get(b"content-length")
      if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise asgi.ApiError(413, f"request body of {int(length):,} bytes is over the "
                            f"{MAX_BODY_BYTES:,}-byte limit")
      if hot is None:
        try:
          await self.fastapi(scope, asgi.receive_with_deadline(receive, self._deadlines),
                             send_tracking)
        finally:
          self._deadlines.done()  # A route that read part of the body, or none of it.
        return
      body = await asgi.read_body(receive, MAX_BODY_BYTES, self._deadlines)
      response = await hot.handler(asgi.Request(scope["method"], scope["path"], headers, body,
                                                hot.params))
    except asgi.ApiError as error:
      response = asgi.error_response(error.status, error.message)
    except Exception as error:  # pylint: disable=broad-except  # A bug: logged, answered 500.
      logging.exception("%s %s failed", scope["method"], scope["path"])
      if started:
        return
      response = asgi.error_response(500, f"internal error, {type(error).__name__}: {error}")
    await asgi.send_response(send_tracking, response)


def create_app(store: model_store.ModelStore,
               body_timeout: float = asgi.BODY_TIMEOUT_SECONDS) -> ServingApp:
  """The ASGI app over `store` (which the caller starts and stops); a request's body must arrive
  within `body_timeout` seconds (408 after)."""
  ctx = context.create(store)
  return ServingApp(ctx, [("GET", "/healthz", _healthz), *tf_serving_api.hot_routes(ctx),
                          *open_inference.hot_routes(ctx)], body_timeout)

