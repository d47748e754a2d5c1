"""The Open Inference Protocol (KServe's V2 protocol, Triton's HTTP/REST API) for the model `mnist`.

  GET  /v2/health/live   /v2/health/ready                          200, or 400 when not ready
  GET  /v2                                                         server metadata
  GET  /v2/models/mnist[/versions/N]                               model metadata
  GET  /v2/models/mnist[/versions/N]/ready                         200, or 400 when not ready
  POST /v2/models/mnist[/versions/N]/infer                         inference

Spec: KServe's "Predict Protocol - Version 2" (kserve/kserve docs/predict-api/v2/required_api.md;
kserve.github.io/website, "Open Inference Protocol") and the binary tensor data extension
(triton-inference-server/server docs/protocol/extension_binary_data.md): a request may carry
tensors as raw little-endian bytes after its JSON, whose length the header
`Inference-Header-Content-Length` gives; inputs say so with the parameter `binary_data_size`;
outputs are returned in binary when the request asks (`binary_data` on an output, or
`binary_data_output` for all of them), and the response then has the same header and
Content-Type application/octet-stream. Errors are {"error": "..."} with a 4xx status (404: no
such model or version; 503: nothing loaded yet).

The model: one input `images`, UINT8 [-1, 28, 28, 1] (pixels 0-255; [N, 28, 28] and [N, 784]
are accepted too), and two outputs, `probabilities` FP32 [-1, 10] (the int8 model's dequantized
softmax) and `classes` INT64 [-1] (the top class).
"""

import dataclasses
import functools
from typing import Any, Dict, List, Optional, Tuple

import fastapi
import numpy as np
import orjson

from core import contract
from serving import asgi
from serving import context
from serving import model_store
from serving import pixels as pixels_lib

MODEL_NAME = "mnist"
SERVER_NAME = "mnist-edgetpu-serving"
SERVER_VERSION = "1"
EXTENSIONS = ["binary_tensor_data"]
# "<project>_<format>" as the spec's Platforms section asks; the framework is LiteRT (TFLite).
PLATFORM = "litert_tflite"
INPUT_DATATYPE = "UINT8"
CLASSES_OUTPUT = "classes"
OUTPUTS = {contract.PROBABILITIES_OUTPUT: ("FP32", "<f4"), CLASSES_OUTPUT: ("INT64", "<i8")}
HEADER_LENGTH = b"inference-header-content-length"
MODEL_PATH = f"/v2/models/{MODEL_NAME}"
INFER_PATH = f"{MODEL_PATH}/infer"
VERSIONED_INFER_PATH = MODEL_PATH + "/versions/{version}/infer"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"


@dataclasses.dataclass(frozen=True)
class InferRequest:
  id: Optional[str]
  pixels: np.ndarray  # [N, 28, 28], checked
  outputs: List[Tuple[str, bool]]  # (name, in binary), in the order to return them


def _split_body(body: bytes, header_length: Optional[str]) -> Tuple[bytes, bytes]:
  """(the JSON, the binary tensor data after it) per Inference-Header-Content-Length."""
  if header_length is None:
    return body, b""
  if not header_length.strip().isdigit() or int(header_length) > len(body):
    raise asgi.ApiError(400, f"Inference-Header-Content-Length {header_length!r} must be the "
                        f"byte length of the JSON at the start of the {len(body)}-byte body")
  return body[:int(header_length)], body[int(header_length):]


def _json_object(content: bytes, what: str) -> Dict[str, Any]:
  try:
    value = orjson.loads(content)
  except orjson.JSONDecodeError as e:
    raise asgi.ApiError(400, f"malformed JSON in the {what}: {e}") from e
  if not isinstance(value, dict):
    raise asgi.ApiError(400, f"the {what} must be a JSON object")
  return value


def _parameters(holder: Dict[str, Any], where: str) -> Dict[str, Any]:
  parameters = holder.get("parameters") or {}
  if not isinstance(parameters, dict):
    raise asgi.ApiError(400, f"{where}: 'parameters' must be an object")
  return parameters


def _input_shape(tensor: Dict[str, Any]) -> Tuple[int, ...]:
  shape = tensor.get("shape")
  if (not isinstance(shape, list) or
      not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
    raise asgi.ApiError(400, f"input '{contract.IMAGES_INPUT}': 'shape' must be a list of "
                        f"non-negative integers, got {shape!r}")
  pixels_lib.check_image_shape(tuple(shape), f"input '{contract.IMAGES_INPUT}'")
  return tuple(shape)


def _input_pixels(tensor: Dict[str, Any], binary: bytes) -> Tuple[np.ndarray, int]:
  """(pixels [N, 28, 28], binary bytes used) of the request input `images`."""
  where = f"input '{contract.IMAGES_INPUT}'"
  if tensor.get("datatype") != INPUT_DATATYPE:
    raise asgi.ApiError(400, f"{where}: datatype must be {INPUT_DATATYPE} (pixels 0-255), got "
                        f"{tensor.get('datatype')!r}")
  shape = _input_shape(tensor)
  count = int(np.prod(shape))
  size = _parameters(tensor, where).get("binary_data_size")
  if size is not None:
    if size != count:
      raise asgi.ApiError(400, f"{where}: binary_data_size {size!r} must be {count}, one byte per "
                          f"UINT8 value of shape {list(shape)}")
    if len(binary) < count:
      raise asgi.ApiError(400, f"{where}: binary_data_size is {count} but only {len(binary)} "
                          "bytes follow the JSON")
    pixels = np.frombuffer(binary, np.uint8, count)  # Every byte is a valid pixel.
    return pixels.reshape(-1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH), count
  if "data" not in tensor:
    raise asgi.ApiError(400, f"{where}: give 'data' or the parameter binary_data_size")
  values = _json_values(tensor["data"], shape, where)
  if values.size != count:
    raise asgi.ApiError(400, f"{where}: 'data' holds {values.size} values, shape {list(shape)} "
                        f"needs {count}")
  return pixels_lib.checked(values.reshape(shape), where), 0


def _json_values(data: Any, shape: Tuple[int, ...], where: str) -> np.ndarray:
  """The UINT8 values of a JSON 'data' field (flat, or nested as `shape`), as integers."""
  values = pixels_lib.regular_array(
      data, f"{where}: 'data' must be flat or nested as the shape {list(shape)}", "element")
  if values.dtype.kind not in "iu":
    raise asgi.ApiError(400, f"{where}: UINT8 'data' must hold integers 0-255, found "
                        f"{values.dtype.name} values")
  return values


def _requested_outputs(payload: Dict[str, Any],
                       parameters: Dict[str, Any]) -> List[Tuple[str, bool]]:
  """(output name, in binary) to return: the requested ones, or all of them."""
  binary_default = bool(parameters.get("binary_data_output", False))
  requested = payload.get("outputs")
  if requested is None:
    return [(name, binary_default) for name in OUTPUTS]
  if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
    raise asgi.ApiError(400, "'outputs' must be a list of objects with a 'name'")
  outputs = []
  for output in requested:
    name = output.get("name")
    if name not in OUTPUTS:
      raise asgi.ApiError(400, f"unknown output {name!r}; the model has {sorted(OUTPUTS)}")
    where = f"output '{name}'"
    outputs.append((name, bool(_parameters(output, where).get("binary_data", binary_default))))
  return outputs


def parse_infer(body: bytes, header_length: Optional[str]) -> InferRequest:
  """The inference request of an infer body (JSON, optionally followed by binary tensor data)."""
  content, binary = _split_body(body, header_length)
  payload = _json_object(content, "inference request")
  request_id = payload.get("id")
  if request_id is not None and not isinstance(request_id, str):
    raise asgi.ApiError(400, f"'id' must be a string, got {request_id!r}")
  inputs = payload.get("inputs")
  if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
    raise asgi.ApiError(400, f"'inputs' must list one tensor, '{contract.IMAGES_INPUT}'")
  if inputs[0].get("name") != contract.IMAGES_INPUT:
    raise asgi.ApiError(400, f"unknown input {inputs[0].get('name')!r}; the model has one input "
                        f"'{contract.IMAGES_INPUT}'")
  pixels, used = _input_pixels(inputs[0], binary)
  if used != len(binary):
    raise asgi.ApiError(400, f"{len(binary)} bytes of binary data follow the JSON, the inputs "
                        f"declare {used}")
  return InferRequest(request_id, pixels,
                      _requested_outputs(payload, _parameters(payload, "the request")))


def render_infer(request: InferRequest, prediction: model_store.Prediction) -> asgi.Response:
  """The inference response: JSON, or JSON then the binary outputs (Inference-Header-Content-Length
  gives the JSON's length)."""
  arrays = {contract.PROBABILITIES_OUTPUT: prediction.probabilities,
            CLASSES_OUTPUT: prediction.classes}
  outputs, chunks = [], []
  for name, binary in request.outputs:
    datatype, little_endian = OUTPUTS[name]
    array = np.ascontiguousarray(arrays[name], little_endian)
    output = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if binary:
      chunks.append(array.tobytes())
      output["parameters"] = {"binary_data_size": len(chunks[-1])}
    else:
      output["data"] = array.ravel()
    outputs.append(output)
  response = {"model_name": MODEL_NAME, "model_version": str(prediction.version),
              "outputs": outputs}
  if request.id is not None:
    response["id"] = request.id
  header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
  if not chunks:
    return asgi.Response(200, header)
  return asgi.Response(200, header + b"".join(chunks), b"application/octet-stream",
                       ((HEADER_LENGTH, str(len(header)).encode()),))


def infer_job(body: bytes, header_length: Optional[str], predict) -> asgi.Response:
  """parse -> predict -> render of an infer body; `predict(pixels)` returns a Prediction."""
  parsed = parse_infer(body, header_length)
  return render_infer(parsed, predict(parsed.pixels))


def infer_handler(ctx: context.Context) -> asgi.Handler:
  """POST /v2/models/mnist[/versions/N]/infer (a hot route: raw ASGI)."""

  async def infer(request: asgi.Request) -> asgi.Response:
    return await ctx.run(len(request.body), request.params.get("version"), functools.partial(
        infer_job, request.body, request.header(HEADER_LENGTH)))
  return infer


def _readiness(ctx: context.Context, version: Optional[str] = None) -> asgi.Response:
  """200 with KServe's {"ready": true}, else 400 with the reason. The spec: "A 200 status code
  indicates true and a 4xx status code indicates false" (its "should be empty" body aside:
  KServe's own server and REST client use {"live": ...}/{"ready": ...}; tritonclient reads the
  status only)."""
  try:
    ctx.served(version)
  except asgi.ApiError as error:
    return asgi.error_response(400, error.message)
  return asgi.Response(200, b'{"ready":true}')


def health_handlers(ctx: context.Context) -> Tuple[asgi.Handler, asgi.Handler]:
  """(live, ready) of the server."""

  async def live(request: asgi.Request) -> asgi.Response:
    del request
    return asgi.Response(200, b'{"live":true}')

  async def ready(request: asgi.Request) -> asgi.Response:
    del request
    return _readiness(ctx)
  return live, ready


def hot_routes(ctx: context.Context) -> List[Tuple[str, str, asgi.Handler]]:
  """(method, path template, handler) of the hot OIP routes."""
  infer = infer_handler(ctx)
  live, ready = health_handlers(ctx)
  return [("POST", INFER_PATH, infer), ("POST", VERSIONED_INFER_PATH, infer),
          ("GET", LIVE_PATH, live), ("GET", READY_PATH, ready)]


def model_metadata(ctx: context.Context, version: Optional[str]) -> Dict[str, Any]:
  loaded = ctx.served(version)
  return {"name": MODEL_NAME, "versions": [str(loaded.version)], "platform": PLATFORM,
          "inputs": [{"name": contract.IMAGES_INPUT, "datatype": INPUT_DATATYPE,
                      "shape": [-1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1]}],
          "outputs": [{"name": contract.PROBABILITIES_OUTPUT, "datatype": "FP32",
                       "shape": [-1, len(loaded.labels)]},
                      {"name": CLASSES_OUTPUT, "datatype": "INT64", "shape": [-1]}]}


def router(ctx: context.Context) -> fastapi.APIRouter:
  """The cold OIP routes (FastAPI): server and model metadata, model readiness."""
  router_ = fastapi.APIRouter(tags=["Open Inference Protocol (KServe V2)"])

  @router_.get("/v2", summary="Server metadata: name, version, extensions.")
  async def server_metadata():
    return asgi.starlette_json({"name": SERVER_NAME, "version": SERVER_VERSION,
                                "extensions": EXTENSIONS})

  @router_.get(MODEL_PATH, summary="Model metadata: inputs and outputs with datatypes and shapes.",
               responses={"503": ERROR_RESPONSE})
  async def metadata():
    return asgi.starlette_json(model_metadata(ctx, None))

  @router_.get(MODEL_PATH + "/versions/{version}", summary="The same, of version N (404 unless "
               "N is served).", responses={"404": ERROR_RESPONSE, "503": ERROR_RESPONSE})
  async def version_metadata(version: str):
    return asgi.starlette_json(model_metadata(ctx, version))

  @router_.get(MODEL_PATH + "/ready", summary="200 when the model is ready, else 400.",
               responses=_READY_RESPONSES)
  async def model_ready():
    return _starlette(_readiness(ctx))

  @router_.get(MODEL_PATH + "/versions/{version}/ready", summary="200 when version N is served, "
               "else 400.", responses=_READY_RESPONSES)
  async def version_ready(version: str):
    return _starlette(_readiness(ctx, version))

  return router_


def _starlette(response: asgi.Response) -> fastapi.Response:
  return fastapi.Response(response.body, response.status, media_type="application/json")


ERROR_RESPONSE = {"description": "The problem, named.", "content": {"application/json": {
    "schema": {"type": "object", "properties": {"error": {"type": "string"}},
               "required": ["error"]}}}}
_TENSOR_SCHEMA = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
    "datatype": {"type": "string"}, "parameters": {"type": "object"},
    "data": {"type": "array"}}}
INFER_OPENAPI = {
    "summary": "Inference (Open Inference Protocol): JSON tensors, or the binary tensor data "
    "extension (Inference-Header-Content-Length).",
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": _TENSOR_SCHEMA},
            "outputs": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "parameters": {"type": "object"}}}}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    "responses": {"200": {"description": "The outputs, as JSON or JSON then binary data.",
                          "content": {"application/json": {"schema": {"type": "object"}},
                                      "application/octet-stream": {"schema": {
                                          "type": "string", "format": "binary"}}}},
                  **dict.fromkeys(("400", "404", "413", "503"), ERROR_RESPONSE)},
}


_READY_RESPONSES = {"200": {"description": "Ready: {\"ready\": true}.", "content": {
    "application/json": {"schema": {"type": "object"}}}}, "400": ERROR_RESPONSE}


def openapi_paths() -> Dict[str, Any]:
  """The OpenAPI path items of the hot OIP routes (FastAPI documents only its own routes)."""
  health = {"responses": _READY_RESPONSES}
  versioned = {**INFER_OPENAPI, "summary": "The same, on version N (404 unless N is served).",
               "parameters": [{"name": "version", "in": "path", "required": True,
                               "schema": {"type": "string"}}]}
  return {INFER_PATH: {"post": INFER_OPENAPI},
          VERSIONED_INFER_PATH: {"post": versioned},
          LIVE_PATH: {"get": {**health, "summary": "The server is live."}},
          READY_PATH: {"get": {**health, "summary": "The model is loaded and ready."}}}
