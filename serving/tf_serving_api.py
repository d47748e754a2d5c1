"""TensorFlow Serving's REST API for the model `mnist`, in the steps of TF Serving's own REST
handler: parse -> predict -> render (tensorflow_serving/model_servers/http_rest_api_handler.cc).

  GET  /v1/models/mnist[/versions/N]                version status (GetModelStatus)
  GET  /v1/models/mnist[/versions/N]/metadata       signature, quantization, labels, sha256, device
  POST /v1/models/mnist[/versions/N]:predict        {"instances": [...]} or {"inputs": [...]}
  POST /v1/models/mnist:classify_image              multipart upload `image`: PNG/JPEG, any size

Paths and bodies: https://www.tensorflow.org/tfx/serving/api_rest. One version is served at a
time, the newest that verified and loaded (TF Serving's default `latest` version policy); a
versioned path naming another version answers 404.
"""

import functools
import json
from typing import Any, Dict, List, Optional, Tuple

import fastapi
import numpy as np
import orjson
from starlette import exceptions as starlette_exceptions

from core import contract
from core import push_manifest
from serving import asgi
from serving import context
from serving import model_store
from serving import pixels as pixels_lib
from serving import preprocess

MODEL_NAME = "mnist"
SIGNATURE_NAME = contract.SERVING_SIGNATURE
MODEL_PATH = f"/v1/models/{MODEL_NAME}"
PREDICT_PATH = f"{MODEL_PATH}:predict"
CLASSIFY_IMAGE_PATH = f"{MODEL_PATH}:classify_image"
METADATA_PATH = f"{MODEL_PATH}/metadata"
VERSIONED_PREDICT_PATH = MODEL_PATH + "/versions/{version}:predict"
IMAGE_FIELD = "image"  # The multipart field of :classify_image.


def _parse_json(body: bytes) -> Any:
  try:
    return orjson.loads(body)
  except orjson.JSONDecodeError:
    pass
  try:  # The standard parser accepts NaN and Infinity, so the pixel check can name them.
    return json.loads(body)
  except (ValueError, RecursionError) as e:
    raise asgi.ApiError(400, f"malformed JSON: {e}") from e


def _instances(data: Any, field: str) -> np.ndarray:
  """Pixels [N, 28, 28] of TF Serving's row ("instances") or columnar ("inputs") value."""
  if isinstance(data, dict):  # Named input, e.g. {"images": [...]}.
    if list(data) != [contract.IMAGES_INPUT]:
      raise asgi.ApiError(400, f"'{field}' as an object must have the one key "
                          f"'{contract.IMAGES_INPUT}', got {sorted(data)}")
    data = data[contract.IMAGES_INPUT]
  if not isinstance(data, list) or not data:
    raise asgi.ApiError(400, f"'{field}' must be a non-empty list of images")
  pixels_lib.check_count(len(data), f"'{field}'")
  data = [item[contract.IMAGES_INPUT] if isinstance(item, dict) and
          list(item) == [contract.IMAGES_INPUT] else item for item in data]
  return pixels_lib.from_nested(data, f"'{field}'")


def parse_predict(media_type: str, body: bytes) -> Tuple[str, np.ndarray]:
  """(the field used, "instances" or "inputs"; pixels [N, 28, 28]) of a :predict body."""
  if media_type != "application/json":
    raise asgi.ApiError(415, f"expected Content-Type application/json, got "
                        f"{media_type or 'none'}")
  payload = _parse_json(body)
  if not isinstance(payload, dict):
    raise asgi.ApiError(400, "expected a JSON object with 'instances' or 'inputs'")
  signature = payload.get("signature_name", SIGNATURE_NAME)
  if signature != SIGNATURE_NAME:
    raise asgi.ApiError(400, f"unknown signature_name {signature!r}; this model has "
                        f"{SIGNATURE_NAME!r}")
  unknown = set(payload) - {"instances", "inputs", "signature_name"}
  fields = [field for field in ("instances", "inputs") if field in payload]
  if unknown or len(fields) != 1:
    raise asgi.ApiError(400, "expected exactly one of 'instances' or 'inputs'" +
                        (f"; unknown keys {sorted(unknown)}" if unknown else ""))
  return fields[0], _instances(payload[fields[0]], fields[0])


def render_predict(field: str, prediction: model_store.Prediction) -> asgi.Response:
  return asgi.json_response({
      "predictions" if field == "instances" else "outputs": prediction.probabilities,
      "classes": prediction.classes, "labels": prediction.labels,
      "model_version": str(prediction.version), "device": prediction.device})


def predict_job(media_type: str, body: bytes, predict) -> asgi.Response:
  """parse -> predict -> render of a :predict body; `predict(pixels)` returns a Prediction."""
  field, pixels = parse_predict(media_type, body)
  return render_predict(field, predict(pixels))


def predict_handler(ctx: context.Context) -> asgi.Handler:
  """POST .../mnist[/versions/N]:predict (a hot route: raw ASGI, see serving/asgi.py)."""

  async def predict(request: asgi.Request) -> asgi.Response:
    return await ctx.run(len(request.body), request.params.get("version"),
                         functools.partial(predict_job, request.media_type, request.body))
  return predict


def _io_metadata(tensor: push_manifest.TensorInfo, quantization: Any) -> Dict[str, Any]:
  scale, zero_point = quantization
  return {"name": tensor.name, "shape": tensor.shape, "dtype": tensor.dtype,
          "quantization": {"scale": scale, "zero_point": zero_point}}


def metadata(loaded: model_store.LoadedModel) -> Dict[str, Any]:
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
          "accepts": f"pixels 0-255, {pixels_lib.ACCEPTED}"}}},
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


def model_status(store: model_store.ModelStore, version: Optional[str] = None) -> Dict[str, Any]:
  """TF Serving's GetModelStatus: the served version AVAILABLE, skipped ones END with the reason."""
  statuses: List[Dict[str, Any]] = []
  loaded = store.current
  if loaded is not None and version in (None, str(loaded.version)):
    statuses.append({"version": str(loaded.version), "state": "AVAILABLE",
                     "status": {"error_code": "OK", "error_message": ""}})
  for failed, reason in sorted(store.failures.items(), reverse=True):
    if version in (None, str(failed)):
      statuses.append({"version": str(failed), "state": "END",
                       "status": {"error_code": "FAILED_PRECONDITION", "error_message": reason}})
  if version is not None and not statuses:
    raise asgi.ApiError(404, f"version {version!r} of model '{MODEL_NAME}' is neither served nor "
                        "skipped" + (f": this server serves version {loaded.version}"
                                     if loaded else ""))
  return {"model_version_status": statuses}


def multipart_available() -> bool:
  """Whether python-multipart, which Starlette parses uploads with, can be imported."""
  try:
    import python_multipart  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    return False
  return True


async def uploaded_image(request: fastapi.Request, multipart: bool) -> bytes:
  """The bytes of the multipart file field IMAGE_FIELD of a :classify_image request.

  `multipart`: whether python-multipart is installed; without it Starlette fails every upload
  with an AssertionError (a bare 500), so the route answers 501 naming the missing package.
  """
  media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
  if media_type != "multipart/form-data":
    raise asgi.ApiError(415, f"expected Content-Type multipart/form-data with a file field "
                        f"'{IMAGE_FIELD}', got {media_type or 'none'}")
  if not multipart:
    raise asgi.ApiError(501, MULTIPART_MISSING)
  try:
    form = await request.form(max_files=1, max_fields=4)
  except (starlette_exceptions.HTTPException, ValueError, KeyError) as e:
    detail = getattr(e, "detail", None) or str(e)
    raise asgi.ApiError(400, f"malformed multipart body: {detail}") from e
  upload = form.get(IMAGE_FIELD)
  if upload is None or isinstance(upload, str):
    raise asgi.ApiError(400, f"expected a file in the multipart field '{IMAGE_FIELD}', got "
                        f"fields {sorted(form.keys())}")
  content = await upload.read()
  if not content:
    raise asgi.ApiError(400, f"the file {upload.filename or ''!r} in the multipart field "
                        f"'{IMAGE_FIELD}' is empty (0 bytes)")
  return content


def router(ctx: context.Context) -> fastapi.APIRouter:
  """The cold TF Serving routes (FastAPI): status, metadata, the image upload."""
  router_ = fastapi.APIRouter(tags=["TensorFlow Serving REST API"])
  multipart = multipart_available()

  @router_.get(MODEL_PATH, summary="Version status, in TF Serving's GetModelStatus shape.")
  async def status():
    return asgi.starlette_json(model_status(ctx.store))

  @router_.get(MODEL_PATH + "/versions/{version}", summary="One version's status.",
               responses={"404": ERROR_RESPONSE})
  async def version_status(version: str):
    return asgi.starlette_json(model_status(ctx.store, version))

  @router_.get(METADATA_PATH, summary="Signature, quantization, labels, file hashes and device.",
               responses={"503": ERROR_RESPONSE})
  async def model_metadata():
    return asgi.starlette_json(metadata(ctx.served()))

  @router_.get(MODEL_PATH + "/versions/{version}/metadata", summary="The same, of version N "
               "(404 unless N is served).",
               responses={"404": ERROR_RESPONSE, "503": ERROR_RESPONSE})
  async def version_metadata(version: str):
    return asgi.starlette_json(metadata(ctx.served(version)))

  @router_.post(CLASSIFY_IMAGE_PATH, summary="Classify an uploaded PNG/JPEG of a digit (MNIST "
                "preprocessing: invert, crop, 20x20 box, centre of mass).",
                openapi_extra=CLASSIFY_OPENAPI)
  async def classify_image(request: fastapi.Request):
    content = await uploaded_image(request, multipart)
    loaded = ctx.served()

    def classify():
      try:
        image = preprocess.image_to_mnist(content)
      except preprocess.ImageError as e:
        raise asgi.ApiError(e.status, str(e)) from e
      return image, ctx.predict(loaded, image[None])
    image, prediction = await ctx.in_thread(classify)
    return asgi.starlette_json({
        "predictions": prediction.probabilities, "classes": prediction.classes,
        "labels": prediction.labels, "model_version": str(prediction.version),
        "device": prediction.device, "mnist_image": image})

  return router_


def hot_routes(ctx: context.Context) -> List[Tuple[str, str, asgi.Handler]]:
  """(method, path template, handler) of the hot TF Serving routes."""
  predict = predict_handler(ctx)
  return [("POST", PREDICT_PATH, predict), ("POST", VERSIONED_PREDICT_PATH, predict)]


PIXELS_SCHEMA = {"type": "array", "minItems": 1, "maxItems": pixels_lib.MAX_IMAGES,
                 "description": "Images: each 28x28 (rows of pixels) or 784 pixel values, "
                 "0 (background) to 255 (ink).",
                 "items": {"type": "array", "items": {"oneOf": [
                     {"type": "number", "minimum": 0, "maximum": 255},
                     {"type": "array", "items": {"type": "number", "minimum": 0,
                                                 "maximum": 255}}]}}}
ERROR_RESPONSE = {"description": "The problem, named.", "content": {"application/json": {
    "schema": {"type": "object", "properties": {"error": {"type": "string"}},
               "required": ["error"]}}}}
PREDICT_OPENAPI = {
    "summary": "Classify images given as pixel values (TF Serving's predict).",
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "TF Serving's row ('instances') or columnar ('inputs') "
        "format; give one of the two.",
        "properties": {"instances": PIXELS_SCHEMA, "inputs": PIXELS_SCHEMA,
                       "signature_name": {"type": "string", "enum": [SIGNATURE_NAME]}}}}}},
    "responses": {"200": {"description": "Per image: the ten class probabilities ('predictions' "
                          "for 'instances', 'outputs' for 'inputs'), the top class and its label.",
                          "content": {"application/json": {"schema": {"type": "object"}}}},
                  **dict.fromkeys(("400", "413", "415", "503"), ERROR_RESPONSE)},
}
CLASSIFY_OPENAPI = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [IMAGE_FIELD],
        "properties": {IMAGE_FIELD: {"type": "string", "format": "binary",
                                     "description": "PNG or JPEG of one digit, any size."}}}}}},
    "responses": {"200": {"description": "The class probabilities of the MNIST-style 28x28 image.",
                          "content": {"application/json": {"schema": {"type": "object"}}}},
                  **dict.fromkeys(("400", "413", "415", "422", "501", "503"), ERROR_RESPONSE)},
}
MULTIPART_MISSING = ("image uploads need the python-multipart package, which is not installed "
                     "(pip install python-multipart, or install serving/requirements.txt)")


def openapi_paths() -> Dict[str, Any]:
  """The OpenAPI path items of the hot routes (FastAPI documents only its own routes)."""
  versioned = {**PREDICT_OPENAPI, "summary": "The same, on version N (404 unless N is served).",
               "parameters": [{"name": "version", "in": "path", "required": True,
                               "schema": {"type": "integer"}}],
               "responses": {**PREDICT_OPENAPI["responses"], "404": ERROR_RESPONSE}}
  return {PREDICT_PATH: {"post": PREDICT_OPENAPI},
          VERSIONED_PREDICT_PATH: {"post": versioned}}
