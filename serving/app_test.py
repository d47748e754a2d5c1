"""The REST API on loopback (`python -m serving serve` in a subprocess) over a real pushed version.

Predictions are compared with core.int8_runtime run on the same model.tflite bytes at batch 1,
exactly as Int8Evaluator computes its int8 metrics.
"""

import io
import json
import struct
import zlib

import httpx
import numpy as np
from PIL import Image
from prometheus_client import parser as prometheus_parser
import pytest

from core import contract
from core import int8_runtime
from serving import app as app_lib
from serving import preprocess
from tests import fixtures_model
from tests import fixtures_serving

pytestmark = pytest.mark.integration

NUM_IMAGES = 16


@pytest.fixture(scope="module")
def client(serving_server):
  with httpx.Client(base_url=serving_server.url, timeout=30) as client:
    yield client


@pytest.fixture(scope="module")
def digits():
  images, labels = fixtures_model.slice_eval_digits()
  return images[:NUM_IMAGES], labels[:NUM_IMAGES]


@pytest.fixture(scope="module")
def reference(pushed_version):
  """The evaluator's int8 computation on the pushed bytes: one image at a time, batch 1."""
  classifier = int8_runtime.Int8Classifier(pushed_version.model_content, num_threads=1)
  return lambda images: np.concatenate([classifier.predict_pixels(image[None])
                                        for image in images])


def png_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format=fmt)
  return buffer.getvalue()


def photo_of(digit: np.ndarray, scale: int = 10) -> np.ndarray:
  """The digit as dark ink on light paper, `scale` times larger, with a margin (like a scan)."""
  big = np.kron(digit, np.ones((scale, scale), np.uint8))
  paper = np.full((big.shape[0] + 60, big.shape[1] + 100), 235, np.uint8)
  paper[30:30 + big.shape[0], 50:50 + big.shape[1]] -= (big.astype(np.float32) * 215 /
                                                        255).astype(np.uint8)
  return paper


def classify(client, content: bytes, name="digit.png", mime="image/png", field="image"):
  return client.post(app_lib.CLASSIFY_IMAGE_PATH, files={field: (name, content, mime)})


def test_status_metadata_health(client, pushed_version):
  status = client.get(app_lib.MODEL_PATH).json()
  assert status == {"model_version_status": [
      {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
  metadata = client.get(app_lib.METADATA_PATH).json()
  classifier = int8_runtime.Int8Classifier(pushed_version.model_content)
  signature = metadata["metadata"]["signature_def"][contract.SERVING_SIGNATURE]
  images = signature["inputs"][contract.IMAGES_INPUT]
  assert images["shape"] == [1, 28, 28, 1] and images["dtype"] == "uint8"  # The default.
  scale, zero_point = classifier.input_quantization
  assert images["quantization"] == {"scale": pytest.approx(scale), "zero_point": zero_point}
  scale, zero_point = classifier.output_quantization
  assert signature["outputs"][contract.PROBABILITIES_OUTPUT]["quantization"] == {
      "scale": pytest.approx(scale), "zero_point": zero_point}
  assert metadata["model_spec"] == {"name": "mnist", "signature_name": "serving_default",
                                    "version": "1"}
  assert metadata["labels"] == list(contract.LABELS)
  assert metadata["sha256"] == pushed_version.manifest["files"]["model.tflite"]["sha256"]
  assert metadata["device"] == "cpu"
  assert metadata["device_reason"] == "no Edge TPU model in this version"
  assert client.get("/healthz").json() == {"status": "ok"}
  assert client.get("/readyz").json() == {"status": "ready", "version": 1, "device": "cpu"}
  page = client.get("/")
  assert page.status_code == 200 and "<canvas" in page.text
  assert app_lib.PREDICT_PATH in client.get("/openapi.json").json()["paths"]


def test_predict_equals_the_evaluators_int8_predictions(client, digits, reference):
  images, labels = digits
  expected = reference(images)
  rows = client.post(app_lib.PREDICT_PATH, json={"instances": images.tolist()}).json()
  assert np.array_equal(np.asarray(rows["predictions"], np.float32), expected)
  assert rows["classes"] == expected.argmax(axis=1).tolist()
  assert rows["labels"] == [str(k) for k in rows["classes"]]
  assert rows["model_version"] == "1" and rows["device"] == "cpu"
  assert np.mean(np.asarray(rows["classes"]) == labels) >= 0.8  # The model learned something.
  # Columnar, flat 784 values, floats, a named input: the same numbers.
  columnar = client.post(app_lib.PREDICT_PATH, json={
      "inputs": {"images": images.reshape(NUM_IMAGES, -1).astype(float).tolist()}}).json()
  assert np.array_equal(np.asarray(columnar["outputs"], np.float32), expected)
  single = client.post(app_lib.PREDICT_PATH, json={
      "instances": [{"images": images[0][..., None].tolist()}],
      "signature_name": "serving_default"}).json()
  assert np.array_equal(np.asarray(single["predictions"], np.float32), expected[:1])


def test_classify_image_applies_mnist_preprocessing(client, digits, reference):
  images, labels = digits
  agree = 0
  for image, label in zip(images[:8], labels[:8], strict=True):
    for fmt, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
      content = png_bytes(photo_of(image), fmt)
      response = classify(client, content, f"digit.{fmt.lower()}", mime)
      assert response.status_code == 200, response.text
      body = response.json()
      pixels = preprocess.image_to_mnist(content)
      assert body["mnist_image"] == pixels.tolist()
      assert np.array_equal(np.asarray(body["predictions"], np.float32), reference(pixels[None]))
      agree += body["classes"][0] == label
  assert agree >= 13  # Of 16: the scanned-looking digits are recognised like the originals.


def _tall_png_header(width: int, height: int) -> bytes:
  """A tiny valid PNG whose header claims width x height (a decompression bomb's first bytes)."""
  content = bytearray(png_bytes(np.zeros((8, 8), np.uint8)))
  ihdr = 8 + 8  # Signature, then the IHDR chunk's length and type.
  content[ihdr:ihdr + 8] = struct.pack(">II", width, height)
  crc = zlib.crc32(bytes(content[ihdr - 4:ihdr + 13]))
  content[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
  return bytes(content)


def _json_post(body: bytes, content_type="application/json"):
  return lambda client: client.post(app_lib.PREDICT_PATH, content=body,
                                    headers={"content-type": content_type})


BLANK = np.zeros((28, 28), np.uint8).tolist()
BAD_REQUESTS = {
    "malformed JSON": (_json_post(b'{"instances": [[1, 2'), 400, "malformed JSON"),
    "not an object": (_json_post(b"[1, 2, 3]"), 400, "'instances' or 'inputs'"),
    "no instances": (_json_post(b'{"images": []}'), 400, "exactly one of"),
    "empty instances": (_json_post(b'{"instances": []}'), 400, "non-empty list"),
    "both formats": (_json_post(json.dumps({"instances": [BLANK], "inputs": [BLANK]}).encode()),
                     400, "exactly one of"),
    "wrong shape": (_json_post(json.dumps({"instances": [[0] * 783]}).encode()), 400,
                    "got shape [783]"),
    "ragged": (_json_post(json.dumps({"instances": [[0] * 784, [0] * 10]}).encode()), 400,
               "one shape"),
    "28x28 and 784 instances": (
        _json_post(json.dumps({"instances": [BLANK, [0] * 784]}).encode()), 400,
        "'instances': the images must all have one shape (each image 28x28, 28x28x1 or 784 "
        "pixel values), but image 0 is 28x28, image 1 has 784 values"),
    "784 and 28x28 inputs": (
        _json_post(json.dumps({"inputs": {"images": [[0] * 784, BLANK]}}).encode()), 400,
        "'inputs': the images must all have one shape (each image 28x28, 28x28x1 or 784 pixel "
        "values), but image 0 has 784 values, image 1 is 28x28"),
    "ragged rows": (_json_post(json.dumps({"instances": [BLANK[:27] + [[0] * 27]]}).encode()),
                    400, "but image 0 has rows of different lengths"),
    "non-numeric": (_json_post(json.dumps({"instances": [["a"] * 784]}).encode()), 400,
                    "numbers 0-255"),
    "null pixel": (_json_post(json.dumps({"instances": [[None] * 784]}).encode()), 400,
                   "numbers 0-255"),
    "NaN pixel": (_json_post(b'{"instances": [[' + b"NaN, " * 783 + b"0]]}"), 400,
                  "finite numbers 0-255, found nan"),
    "pixel over 255": (_json_post(json.dumps({"instances": [[256] * 784]}).encode()), 400,
                       "must be 0-255, found 256"),
    "negative pixel": (_json_post(json.dumps({"instances": [[-1] * 784]}).encode()), 400,
                       "must be 0-255, found -1"),
    "too many instances": (_json_post(json.dumps({"instances": [BLANK] * 257}).encode()), 413,
                           "too many instances: 257"),
    "oversized body": (_json_post(b" " * (app_lib.MAX_BODY_BYTES + 1)), 413,
                       "over the 8,388,608-byte limit"),
    "wrong signature": (_json_post(json.dumps({"instances": [BLANK],
                                               "signature_name": "x"}).encode()), 400,
                        "unknown signature_name"),
    "text content type": (_json_post(b'{"instances": []}', "text/plain"), 415,
                          "expected Content-Type application/json, got text/plain"),
    "JSON to classify_image": (
        lambda client: client.post(app_lib.CLASSIFY_IMAGE_PATH, json={"instances": [BLANK]}),
        415, "expected Content-Type multipart/form-data"),
    "no image field": (lambda client: classify(client, b"x", field="file"), 400,
                       "expected a file in the multipart field 'image'"),
    "corrupt image": (lambda client: classify(client, b"\x89PNG\r\n\x1a\n garbage"), 415,
                      "not a PNG or JPEG"),
    "truncated image": (lambda client: classify(client, png_bytes(photo_of(
        fixtures_model.slice_eval_digits()[0][0]))[:300]), 422, "corrupt PNG image"),
    "GIF image": (lambda client: classify(client, png_bytes(np.zeros((8, 8), np.uint8), "GIF"),
                                          "x.gif", "image/gif"), 415, "format GIF"),
    "huge dimensions": (lambda client: classify(client, _tall_png_header(5000, 4000)), 413,
                        "5000x4000 pixels, more than the 16,000,000 pixel limit"),
    "decompression bomb": (lambda client: classify(client, _tall_png_header(30000, 30000)), 413,
                           "decompression bomb"),
    "blank image": (lambda client: classify(client, png_bytes(np.full((50, 50), 255, np.uint8))),
                    422, "blank"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_input_is_a_4xx_naming_the_problem_and_the_next_request_succeeds(
    client, digits, reference, case):
  send, status, message = BAD_REQUESTS[case]
  response = send(client)
  assert response.status_code == status, response.text
  assert response.headers["content-type"] == "application/json"
  assert message in response.json()["error"]
  assert "inhomogeneous" not in response.json()["error"]  # numpy's words, not the API's.
  image = digits[0][:1]
  good = client.post(app_lib.PREDICT_PATH, json={"instances": image.tolist()})
  assert good.status_code == 200
  assert np.array_equal(np.asarray(good.json()["predictions"], np.float32), reference(image))


def test_metrics(client, digits):
  client.post(app_lib.PREDICT_PATH, json={"instances": digits[0][:3].tolist()})
  client.post(app_lib.PREDICT_PATH, content=b"{", headers={"content-type": "application/json"})
  text = client.get("/metrics").text
  assert "mnist_serving_model_version 1.0" in text
  assert "mnist_serving_model_on_edgetpu 0.0" in text
  lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
  endpoint = f'endpoint="{app_lib.PREDICT_PATH}"'
  assert float(lines[f'mnist_serving_requests_total{{code="200",{endpoint}}}']) >= 1
  assert float(lines[f'mnist_serving_errors_total{{code="400",{endpoint}}}']) >= 1
  assert float(lines[f'mnist_serving_request_seconds_count{{{endpoint}}}']) >= 2
  assert float(lines["mnist_serving_predictions_total"]) >= 3


def test_metrics_count_each_route_under_its_path_template(client, digits):
  """Versioned paths counted under their route's template, never their raw path (a label value
  per version) nor all together as "other"."""
  image = {"instances": digits[0][:1].tolist()}
  infer = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 784],
                       "data": digits[0][0].ravel().tolist()}]}
  requests = {  # The label each request must be counted under.
      "/v2/models/mnist/ready": lambda: client.get("/v2/models/mnist/ready"),
      "/v2/models/mnist/versions/{version}/ready": lambda: client.get(
          "/v2/models/mnist/versions/1/ready"),
      "/v2/models/mnist/versions/{version}": lambda: client.get("/v2/models/mnist/versions/2"),
      "/v2/models/mnist/versions/{version}/infer": lambda: client.post(
          "/v2/models/mnist/versions/1/infer", json=infer),
      "/v1/models/mnist/versions/{version}": lambda: client.get(f"{app_lib.MODEL_PATH}/versions/2"),
      "/v1/models/mnist/versions/{version}/metadata": lambda: client.get(
          f"{app_lib.MODEL_PATH}/versions/1/metadata"),
      "/v1/models/mnist/versions/{version}:predict": lambda: client.post(
          f"{app_lib.MODEL_PATH}/versions/1:predict", json=image),
      "/v2/models/mnist": lambda: client.get("/v2/models/mnist"),
      "/docs": lambda: client.get("/docs"),
      "other": lambda: client.get("/v1/models/mnist/versions/1/nothing"),
  }
  codes = {label: send().status_code for label, send in requests.items()}
  counted = {}  # endpoint label -> the codes counted under it
  for family in prometheus_parser.text_string_to_metric_families(client.get("/metrics").text):
    for sample in family.samples:
      if sample.name == "mnist_serving_requests_total":
        counted.setdefault(sample.labels["endpoint"], set()).add(sample.labels["code"])
  for label, code in codes.items():
    assert str(code) in counted.get(label, ()), (label, code, sorted(counted))
  assert not [label for label in counted if "/versions/1" in label or "/versions/2" in label]


def test_tf_servings_versioned_paths_and_unknown_names(client, digits, reference):
  images = digits[0][:2]
  versioned = client.post(f"{app_lib.MODEL_PATH}/versions/1:predict",
                          json={"instances": images.tolist()})
  assert versioned.status_code == 200, versioned.text
  assert np.array_equal(np.asarray(versioned.json()["predictions"], np.float32),
                        reference(images))
  assert client.get(f"{app_lib.MODEL_PATH}/versions/1").json() == client.get(
      app_lib.MODEL_PATH).json()
  metadata = client.get(f"{app_lib.MODEL_PATH}/versions/1/metadata").json()
  assert metadata == client.get(app_lib.METADATA_PATH).json()
  not_served = [client.post(f"{app_lib.MODEL_PATH}/versions/2:predict",
                            json={"instances": images.tolist()}),
                client.get(f"{app_lib.MODEL_PATH}/versions/2/metadata"),
                client.get(f"{app_lib.MODEL_PATH}/versions/2")]
  for response in not_served:
    assert response.status_code == 404, response.text
    assert "version '2' of model 'mnist' is" in response.json()["error"]
    assert "this server serves version 1" in response.json()["error"]
  unknown = client.post("/v1/models/fashion:predict", json={"instances": images.tolist()})
  assert unknown.status_code == 404
  assert unknown.json() == {"error": "unknown model 'fashion': this server serves 'mnist'"}


def test_two_workers_serve_and_sum_their_counters(pushed_version, digits, reference, tmp_path):
  server = fixtures_serving.start_server(pushed_version.destination, str(tmp_path / "log"),
                                         ["--workers", "2"])
  try:
    images = digits[0][:1]
    for _ in range(12):  # A connection each: the two workers share the listening socket.
      answer = httpx.post(server.url + app_lib.PREDICT_PATH, json={"instances": images.tolist()})
      assert np.array_equal(np.asarray(answer.json()["predictions"], np.float32),
                            reference(images))
    for _ in range(4):  # Whichever worker answers, /metrics counts both workers' requests.
      assert "mnist_serving_predictions_total 12.0" in httpx.get(server.url + "/metrics").text
  finally:
    server.stop()
