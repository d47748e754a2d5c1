"""The REST API (TensorFlow Serving's paths and shapes), the drawing page and the metrics (FastAPI).

  GET  /v1/models/mnist                   version status, as TF Serving's GetModelStatus
  GET  /v1/models/mnist/metadata          signature, quantization, labels, sha256, device
  POST /v1/models/mnist:predict           {"instances": [...]} or {"inputs": [...]}, pixels 0-255
  POST /v1/models/mnist:classify_image    multipart upload `image`: PNG/JPEG of any size
  GET  /metrics  /healthz  /readyz  /  (the page)  /openapi.json  /docs

Every error is JSON {"error": "<what is wrong>"} with a 4xx status (5xx only when no model is
loaded: 503). Request bodies are parsed by hand rather than by pydantic models: the checks name the
problem in the user's terms (which instance, which shape, which value) and the single-image path
stays fast; the OpenAPI document states the same schema.
"""

import importlib.resources
import json
import time
from typing import Any, Dict, List, Tuple

import fastapi
from fastapi import responses
import numpy as np
import orjson
import prometheus_client
from starlette import concurrency
from starlette import exceptions as starlette_exceptions

from core import contract
from core import push_manifest
from serving import model_store
from serving import preprocess

MODEL_NAME = "mnist"
SIGNATURE_NAME = contract.SERVING_SIGNATURE
MODEL_PATH = f"/v1/models/{MODEL_NAME}"
PREDICT_PATH = f"{MODEL_PATH}:predict"
CLASSIFY_IMAGE_PATH = f"{MODEL_PATH}:classify_image"
METADATA_PATH = f"{MODEL_PATH}/metadata"
IMAGE_FIELD = "image"  # The multipart field of :classify_image.
MAX_BODY_BYTES = 8 * 1024 * 1024  # A phone photo fits; larger bodies get 413 before parsing.
MAX_INSTANCES = 256  # Per :predict request.
INSTANCE_SHAPES = ((contract.NUM_PIXELS,), (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH),
                   (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1))
_BODY_TOO_LARGE = "mnist.body_too_large"
LATENCY_BUCKETS = (.0005, .001, .002, .004, .006, .008, .01, .015, .025, .05, .1, .25, .5, 1, 2.5)


class ApiError(Exception):
  """A request the client must fix: HTTP `status` and a message naming the problem."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


def _error(status: int, message: str) -> responses.Response:
  return responses.Response(orjson.dumps({"error": message}), status_code=status,
                            media_type="application/json")


def _json(content: Any, status: int = 200) -> responses.Response:
  return responses.Response(orjson.dumps(content), status_code=status,
                            media_type="application/json")


class _Metrics:
  """Prometheus metrics in a registry of this app's own (several apps may share a process)."""

  def __init__(self, store: model_store.ModelStore):
    self.registry = prometheus_client.CollectorRegistry()
    self.requests = prometheus_client.Counter(
        "mnist_serving_requests", "HTTP requests by endpoint and status code.",
        ["endpoint", "code"], registry=self.registry)
    self.errors = prometheus_client.Counter(
        "mnist_serving_errors", "HTTP requests answered with an error (4xx/5xx).",
        ["endpoint", "code"], registry=self.registry)
    self.latency = prometheus_client.Histogram(
        "mnist_serving_request_seconds", "Time from request to response, by endpoint.",
        ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
    self.predictions = prometheus_client.Counter(
        "mnist_serving_predictions", "Images classified.", registry=self.registry)
    version = prometheus_client.Gauge(
        "mnist_serving_model_version", "The version being served (0: none yet).",
        registry=self.registry)
    version.set_function(lambda: store.current.version if store.current else 0)
    edgetpu = prometheus_client.Gauge(
        "mnist_serving_model_on_edgetpu", "1 when the served version runs on the Edge TPU.",
        registry=self.registry)
    edgetpu.set_function(
        lambda: int(bool(store.current) and store.current.device == model_store.EDGETPU))
    failed = prometheus_client.Gauge(
        "mnist_serving_failed_versions", "Pushed versions skipped because they failed "
        "verification or loading.", registry=self.registry)
    failed.set_function(lambda: len(store.failures))


class _GuardMiddleware:
  """Pure ASGI: refuses bodies over MAX_BODY_BYTES (413) and records the request metrics."""

  def __init__(self, app, metrics: _Metrics, endpoints: frozenset, max_body_bytes: int):
    self.app = app
    self.metrics = metrics
    self.endpoints = endpoints
    self.max_body_bytes = max_body_bytes

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      await self.app(scope, receive, send)
      return
    endpoint = scope["path"] if scope["path"] in self.endpoints else "other"
    start = time.perf_counter()
    status = 500

    async def send_recording(message):
      nonlocal status
      if message["type"] == "http.response.start":
        status = message["status"]
      await send(message)

    received = 0

    async def receive_limited():
      nonlocal received
      message = await receive()
      if message["type"] == "http.request":
        received += len(message.get("body", b""))
        if received > self.max_body_bytes:  # Chunked upload past the limit: stop reading.
          scope[_BODY_TOO_LARGE] = True
          return {"type": "http.request", "body": b"", "more_body": False}
      return message

    try:
      length = dict(scope["headers"]).get(b"content-length")
      if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
        await _error(413, f"request body of {int(length):,} bytes is over the "
                     f"{self.max_body_bytes:,}-byte limit")(scope, receive, send_recording)
      else:
        await self.app(scope, receive_limited, send_recording)
    finally:
      code = str(status)
      self.metrics.requests.labels(endpoint, code).inc()
      if status >= 400:
        self.metrics.errors.labels(endpoint, code).inc()
      self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


async def _read_body(request: fastapi.Request) -> bytes:
  body = await request.body()
  if request.scope.get(_BODY_TOO_LARGE):
    raise ApiError(413, f"request body is over the {MAX_BODY_BYTES:,}-byte limit")
  return body


def _media_type(request: fastapi.Request) -> str:
  return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _parse_json(body: bytes) -> Any:
  try:
    return orjson.loads(body)
  except orjson.JSONDecodeError:
    pass
  try:  # The standard parser accepts NaN and Infinity, so the pixel check can name them.
    return json.loads(body)
  except (ValueError, RecursionError) as e:
    raise ApiError(400, f"malformed JSON: {e}") from e


def _instance_pixels(data: Any, field: str) -> np.ndarray:
  """The pixels float64 [N, 28, 28] of a batch given as nested lists; raises ApiError."""
  if isinstance(data, dict):  # Named input, e.g. {"images": [...]}.
    if list(data) != [contract.IMAGES_INPUT]:
      raise ApiError(400, f"'{field}' as an object must have the one key "
                     f"'{contract.IMAGES_INPUT}', got {sorted(data)}")
    data = data[contract.IMAGES_INPUT]
  if not isinstance(data, list) or not data:
    raise ApiError(400, f"'{field}' must be a non-empty list of images")
  if len(data) > MAX_INSTANCES:
    raise ApiError(413, f"too many instances: {len(data)} in one request, the limit is "
                   f"{MAX_INSTANCES}")
  data = [item[contract.IMAGES_INPUT] if isinstance(item, dict) and
          list(item) == [contract.IMAGES_INPUT] else item for item in data]
  try:
    pixels = np.asarray(data)
  except (ValueError, TypeError) as e:  # Ragged nesting.
    raise ApiError(400, f"'{field}': the images do not all have one shape of 28x28 or 784 "
                   f"pixel values ({e})") from e
  if pixels.dtype.kind not in "iuf":
    raise ApiError(400, f"'{field}': pixel values must be numbers 0-255, found "
                   f"{_describe_non_numeric(pixels)}")
  if pixels.shape[1:] not in INSTANCE_SHAPES:
    raise ApiError(400, f"'{field}': each image must be 28x28, 28x28x1 or 784 pixel values, got "
                   f"shape {list(pixels.shape[1:])} (batch of {pixels.shape[0]})")
  pixels = pixels.astype(np.float64)
  if not np.isfinite(pixels).all():
    bad = pixels[~np.isfinite(pixels)][0]
    raise ApiError(400, f"'{field}': pixel values must be finite numbers 0-255, found {bad}")
  low, high = pixels.min(), pixels.max()
  if low < 0 or high > contract.MAX_PIXEL_VALUE:
    value = low if low < 0 else high
    raise ApiError(400, f"'{field}': pixel values must be 0-255, found {value:g}")
  return pixels.reshape(-1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH)


def _describe_non_numeric(pixels: np.ndarray) -> str:
  if pixels.dtype.kind == "b":
    return "true/false"
  for value in pixels.ravel():
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      return f"{type(value).__name__} {json.dumps(value, default=str)[:40]}"
  return pixels.dtype.name


def _predictions(loaded: model_store.LoadedModel, pixels: np.ndarray) -> Dict[str, Any]:
  probabilities = loaded.predict_pixels(pixels)
  return {"probabilities": probabilities.tolist(),
          "classes": [int(k) for k in probabilities.argmax(axis=1)],
          "labels": [loaded.labels[k] for k in probabilities.argmax(axis=1)]}


def _io_metadata(tensor: push_manifest.TensorInfo, quantization: Any) -> Dict[str, Any]:
  scale, zero_point = quantization
  return {"name": tensor.name, "shape": tensor.shape, "dtype": tensor.dtype,
          "quantization": {"scale": scale, "zero_point": zero_point}}


def _served(store: model_store.ModelStore) -> model_store.LoadedModel:
  loaded = store.current
  if loaded is None:
    raise ApiError(503, f"no model version loaded yet from {store.destination}" +
                   (f"; skipped: {store.failures}" if store.failures else ""))
  return loaded


_PIXELS_SCHEMA = {"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
                  "description": "Images: each 28x28 (rows of pixels) or 784 pixel values, "
                  "0 (background) to 255 (ink).",
                  "items": {"type": "array", "items": {"oneOf": [
                      {"type": "number", "minimum": 0, "maximum": 255},
                      {"type": "array", "items": {"type": "number", "minimum": 0,
                                                  "maximum": 255}}]}}}
_ERROR_RESPONSE = {"description": "The problem, named.", "content": {"application/json": {
    "schema": {"type": "object", "properties": {"error": {"type": "string"}},
               "required": ["error"]}}}}
_PREDICT_OPENAPI = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "TF Serving's row ('instances') or columnar ('inputs') "
        "format; give one of the two.",
        "properties": {"instances": _PIXELS_SCHEMA, "inputs": _PIXELS_SCHEMA,
                       "signature_name": {"type": "string", "enum": [SIGNATURE_NAME]}}}}}},
    "responses": {"200": {"description": "Per image: the ten class probabilities ('predictions' "
                          "for 'instances', 'outputs' for 'inputs'), the top class and its label.",
                          "content": {"application/json": {"schema": {"type": "object"}}}},
                  **dict.fromkeys(("400", "413", "415", "503"), _ERROR_RESPONSE)},
}
_CLASSIFY_OPENAPI = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [IMAGE_FIELD],
        "properties": {IMAGE_FIELD: {"type": "string", "format": "binary",
                                     "description": "PNG or JPEG of one digit, any size."}}}}}},
    "responses": {"200": {"description": "The class probabilities of the MNIST-style 28x28 image.",
                          "content": {"application/json": {"schema": {"type": "object"}}}},
                  **dict.fromkeys(("400", "413", "415", "422", "503"), _ERROR_RESPONSE)},
}


def _metadata(loaded: model_store.LoadedModel) -> Dict[str, Any]:
  """GET .../metadata: TF Serving's signature shape plus labels, hashes, device and evaluation."""
  manifest = loaded.manifest
  files = {name: entry.model_dump() for name, entry in manifest.files.items()}
  return {
      "model_spec": {"name": MODEL_NAME, "signature_name": SIGNATURE_NAME,
                     "version": str(loaded.version)},
      "metadata": {"signature_def": {SIGNATURE_NAME: {
          "inputs": {contract.IMAGES_INPUT: _io_metadata(manifest.input,
                                                         loaded.input_quantization)},
          "outputs": {contract.PROBABILITIES_OUTPUT: _io_metadata(manifest.output,
                                                                  loaded.output_quantization)},
          "accepts": "pixels 0-255, each image 28x28, 28x28x1 or 784 values"}}},
      "labels": loaded.labels,
      "files": files,
      "sha256": files[push_manifest.MODEL_FILE]["sha256"],
      "device": loaded.device,
      "device_reason": loaded.device_reason,
      "edgetpu": manifest.edgetpu.model_dump(mode="json"),
      "evaluation": (manifest.evaluation.model_dump(mode="json", by_alias=True)
                     if manifest.evaluation else None),
      "pushed_at": manifest.pushed_at.isoformat(),
      "path": loaded.path,
  }


def _parse_predict_request(request: fastapi.Request, body: bytes) -> Tuple[str, np.ndarray]:
  """(the field used, "instances" or "inputs"; pixels float64 [N, 28, 28]) of a :predict body."""
  if _media_type(request) != "application/json":
    raise ApiError(415, f"expected Content-Type application/json, got "
                   f"{_media_type(request) or 'none'}")
  payload = _parse_json(body)
  if not isinstance(payload, dict):
    raise ApiError(400, "expected a JSON object with 'instances' or 'inputs'")
  signature = payload.get("signature_name", SIGNATURE_NAME)
  if signature != SIGNATURE_NAME:
    raise ApiError(400, f"unknown signature_name {signature!r}; this model has "
                   f"{SIGNATURE_NAME!r}")
  unknown = set(payload) - {"instances", "inputs", "signature_name"}
  fields = [field for field in ("instances", "inputs") if field in payload]
  if unknown or len(fields) != 1:
    raise ApiError(400, "expected exactly one of 'instances' or 'inputs'" +
                   (f"; unknown keys {sorted(unknown)}" if unknown else ""))
  return fields[0], _instance_pixels(payload[fields[0]], fields[0])


async def _uploaded_image(request: fastapi.Request) -> bytes:
  """The bytes of the multipart file field IMAGE_FIELD of a :classify_image request."""
  if _media_type(request) != "multipart/form-data":
    raise ApiError(415, f"expected Content-Type multipart/form-data with a file field "
                   f"'{IMAGE_FIELD}', got {_media_type(request) or 'none'}")
  await _read_body(request)
  try:
    form = await request.form(max_files=1, max_fields=4)
  except (starlette_exceptions.HTTPException, ValueError, KeyError) as e:
    detail = getattr(e, "detail", None) or str(e)
    raise ApiError(400, f"malformed multipart body: {detail}") from e
  upload = form.get(IMAGE_FIELD)
  if upload is None or isinstance(upload, str):
    raise ApiError(400, f"expected a file in the multipart field '{IMAGE_FIELD}', got fields "
                   f"{sorted(form.keys())}")
  return await upload.read()


def _add_error_handlers(app: fastapi.FastAPI) -> None:
  """Every error as JSON {"error": "..."} (ApiError, Starlette's HTTP errors, validation)."""

  @app.exception_handler(ApiError)
  async def api_error(request, error: ApiError):
    del request
    return _error(error.status, error.message)

  @app.exception_handler(starlette_exceptions.HTTPException)
  async def http_error(request, error):
    del request
    return _error(error.status_code, str(error.detail))

  @app.exception_handler(fastapi.exceptions.RequestValidationError)
  async def validation_error(request, error):
    del request
    return _error(400, "; ".join(str(e.get("msg")) for e in error.errors()))


def _service_router(store: model_store.ModelStore, metrics: _Metrics) -> fastapi.APIRouter:
  """The drawing page, health, readiness and the Prometheus metrics."""
  router = fastapi.APIRouter()
  page = importlib.resources.files("serving").joinpath("page.html").read_text("utf-8")

  @router.get("/", response_class=responses.HTMLResponse, include_in_schema=False)
  async def index():
    return responses.HTMLResponse(page)

  @router.get("/healthz", summary="The process is up.")
  async def healthz():
    return _json({"status": "ok"})

  @router.get("/readyz", summary="A verified model version is loaded (503 until then).",
           responses={"503": _ERROR_RESPONSE})
  async def readyz():
    loaded = _served(store)
    return _json({"status": "ready", "version": loaded.version, "device": loaded.device})

  @router.get("/metrics", summary="Prometheus metrics.", response_class=responses.PlainTextResponse)
  async def metrics_endpoint():
    return responses.Response(prometheus_client.generate_latest(metrics.registry),
                              media_type=prometheus_client.CONTENT_TYPE_LATEST)

  return router


def _model_router(store: model_store.ModelStore, metrics: _Metrics) -> fastapi.APIRouter:
  """TF Serving's model status, metadata and predict, and the image upload."""
  router = fastapi.APIRouter()

  @router.get(MODEL_PATH, summary="Version status, in TF Serving's GetModelStatus shape.")
  async def model_status():
    statuses: List[Dict[str, Any]] = []
    if store.current is not None:
      statuses.append({"version": str(store.current.version), "state": "AVAILABLE",
                       "status": {"error_code": "OK", "error_message": ""}})
    for version, reason in sorted(store.failures.items(), reverse=True):
      statuses.append({"version": str(version), "state": "END",
                       "status": {"error_code": "FAILED_PRECONDITION", "error_message": reason}})
    return _json({"model_version_status": statuses})

  @router.get(METADATA_PATH, summary="Signature, quantization, labels, file hashes and device.",
           responses={"503": _ERROR_RESPONSE})
  async def model_metadata():
    return _json(_metadata(_served(store)))

  @router.post(PREDICT_PATH, summary="Classify images given as pixel values (TF Serving's "
            "predict).", openapi_extra=_PREDICT_OPENAPI)
  async def predict(request: fastapi.Request):
    field, pixels = _parse_predict_request(request, await _read_body(request))
    loaded = _served(store)
    result = _predictions(loaded, pixels)
    metrics.predictions.inc(len(pixels))
    return _json({"predictions" if field == "instances" else "outputs": result["probabilities"],
                  "classes": result["classes"], "labels": result["labels"],
                  "model_version": str(loaded.version), "device": loaded.device})

  @router.post(CLASSIFY_IMAGE_PATH, summary="Classify an uploaded PNG/JPEG of a digit (MNIST "
            "preprocessing: invert, crop, 20x20 box, centre of mass).",
            openapi_extra=_CLASSIFY_OPENAPI)
  async def classify_image(request: fastapi.Request):
    content = await _uploaded_image(request)
    loaded = _served(store)

    def classify():
      pixels = preprocess.image_to_mnist(content)
      return pixels, _predictions(loaded, pixels[None])

    try:
      pixels, result = await concurrency.run_in_threadpool(classify)
    except preprocess.ImageError as e:
      raise ApiError(e.status, str(e)) from e
    metrics.predictions.inc()
    return _json({"predictions": result["probabilities"], "classes": result["classes"],
                  "labels": result["labels"], "model_version": str(loaded.version),
                  "device": loaded.device, "mnist_image": pixels.tolist()})

  return router


def create_app(store: model_store.ModelStore) -> fastapi.FastAPI:
  """The ASGI app over `store` (which the caller starts and stops)."""
  app = fastapi.FastAPI(
      title="MNIST Edge TPU model server",
      description="The pushed int8 MNIST model behind TensorFlow Serving's REST API.",
      version="1", default_response_class=responses.JSONResponse)
  metrics = _Metrics(store)
  _add_error_handlers(app)
  app.include_router(_service_router(store, metrics))
  app.include_router(_model_router(store, metrics))
  app.add_middleware(_GuardMiddleware, metrics=metrics, max_body_bytes=MAX_BODY_BYTES,
                     endpoints=frozenset({"/", "/healthz", "/readyz", "/metrics", MODEL_PATH,
                                          METADATA_PATH, PREDICT_PATH, CLASSIFY_IMAGE_PATH}))
  return app
