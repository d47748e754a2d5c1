"""The Open Inference Protocol on loopback, spoken by a client nobody here wrote: Triton's
`tritonclient.http.InferenceServerClient` (with its defaults: binary tensors both ways, and with
JSON), against `python -m serving serve` on a real pushed version.

Predictions are compared with core.int8_runtime run on the same model.tflite bytes at batch 1,
exactly as Int8Evaluator computes its int8 metrics.
"""

import httpx
import numpy as np
import pytest
from tritonclient import http as triton_http
from tritonclient import utils as triton_utils

from core import int8_runtime
from serving import context
from serving import open_inference
from tests import fixtures_model

pytestmark = pytest.mark.integration

NUM_IMAGES = 16


@pytest.fixture(scope="module")
def triton(serving_server):
  client = triton_http.InferenceServerClient(serving_server.url.removeprefix("http://"))
  yield client
  client.close()


@pytest.fixture(scope="module")
def digits():
  images, labels = fixtures_model.slice_eval_digits()
  return images[:NUM_IMAGES], labels[:NUM_IMAGES]


@pytest.fixture(scope="module")
def reference(pushed_version):
  classifier = int8_runtime.Int8Classifier(pushed_version.model_content, num_threads=1)
  return lambda images: np.concatenate([classifier.predict_pixels(image[None])
                                        for image in images])


def images_input(images: np.ndarray, binary: bool = True, shape=None) -> triton_http.InferInput:
  pixels = images.reshape(shape or (len(images), 28, 28, 1))
  tensor = triton_http.InferInput("images", list(pixels.shape), "UINT8")
  tensor.set_data_from_numpy(pixels, binary_data=binary)
  return tensor


def test_health_and_metadata(triton):
  assert triton.is_server_live() and triton.is_server_ready()
  assert triton.is_model_ready("mnist") and triton.is_model_ready("mnist", "1")
  assert not triton.is_model_ready("mnist", "2")
  assert triton.get_server_metadata() == {"name": "mnist-edgetpu-serving", "version": "1",
                                          "extensions": ["binary_tensor_data"]}
  assert triton.get_model_metadata("mnist") == {
      "name": "mnist", "versions": ["1"], "platform": "litert_tflite",
      "inputs": [{"name": "images", "datatype": "UINT8", "shape": [-1, 28, 28, 1]}],
      "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                  {"name": "classes", "datatype": "INT64", "shape": [-1]}]}
  assert triton.get_model_metadata("mnist", "1")["versions"] == ["1"]


def test_infer_with_tritonclients_defaults_binary_both_ways(triton, digits, reference):
  images, labels = digits
  expected = reference(images)
  result = triton.infer("mnist", [images_input(images)], request_id="batch-1")
  response = result.get_response()
  assert response["id"] == "batch-1" and response["model_version"] == "1"
  assert all("binary_data_size" in output["parameters"] for output in response["outputs"])
  assert np.array_equal(result.as_numpy("probabilities"), expected)
  assert result.as_numpy("probabilities").dtype == np.float32
  assert np.array_equal(result.as_numpy("classes"), expected.argmax(axis=1))
  assert np.mean(result.as_numpy("classes") == labels) >= 0.8  # The model learned something.


def test_infer_with_json_tensors(triton, digits, reference):
  images, _ = digits
  outputs = [triton_http.InferRequestedOutput("probabilities", binary_data=False),
             triton_http.InferRequestedOutput("classes", binary_data=False)]
  result = triton.infer("mnist", [images_input(images, binary=False, shape=(NUM_IMAGES, 784))],
                        outputs=outputs)
  assert all("data" in output for output in result.get_response()["outputs"])
  assert np.array_equal(result.as_numpy("probabilities"), reference(images))
  # One output, in binary, from a JSON request to version 1.
  result = triton.infer("mnist", [images_input(images[:1], binary=False)], model_version="1",
                        outputs=[triton_http.InferRequestedOutput("classes")])
  assert [output["name"] for output in result.get_response()["outputs"]] == ["classes"]
  assert result.as_numpy("classes").tolist() == [int(reference(images[:1]).argmax())]


def test_a_batch_runs_in_the_batch_process_with_the_same_numbers(triton, serving_server,
                                                                  reference):
  images = fixtures_model.slice_eval_digits()[0][:128]
  assert images.size > context.INLINE_BODY_BYTES  # Over the inline limit: the batch process.
  counted = _predictions_total(serving_server.url)
  for binary in (True, False):
    result = triton.infer("mnist", [images_input(images, binary=binary)])
    assert np.array_equal(result.as_numpy("probabilities"), reference(images))
  assert _predictions_total(serving_server.url) == counted + 2 * len(images)
  bad = images_input(images.astype(np.uint8)[:, :27], shape=(128, 27, 28))  # Errors come back.
  with pytest.raises(triton_utils.InferenceServerException, match="got shape"):
    triton.infer("mnist", [bad])


def _predictions_total(url: str) -> float:
  for line in httpx.get(url + "/metrics").text.splitlines():
    if line.startswith("mnist_serving_predictions_total "):
      return float(line.split()[1])
  raise AssertionError("no mnist_serving_predictions_total")


@pytest.mark.parametrize("case, message", [
    ("FP32", "datatype must be UINT8"),
    ("wrong name", "unknown input 'pixels'"),
    ("wrong shape", "each image 28x28, 28x28x1 or 784 pixel values, got shape [27, 28]"),
    ("unknown output", "unknown output 'logits'"),
    ("version 2", "version '2' of model 'mnist' is not served: this server serves version 1"),
    ("other model", "unknown model 'fashion'"),
])
def test_errors_reach_tritonclient_as_the_protocols_error_object(triton, digits, case, message):
  images = digits[0][:2]
  tensor, outputs, model, version = images_input(images), None, "mnist", ""
  if case == "FP32":
    tensor = triton_http.InferInput("images", [2, 28, 28, 1], "FP32")
    tensor.set_data_from_numpy(images[..., None].astype(np.float32))
  elif case == "wrong name":
    tensor = triton_http.InferInput("pixels", [2, 28, 28, 1], "UINT8")
    tensor.set_data_from_numpy(images[..., None])
  elif case == "wrong shape":
    tensor = images_input(images[:, :27], shape=(2, 27, 28))
  elif case == "unknown output":
    outputs = [triton_http.InferRequestedOutput("logits")]
  model = "fashion" if case == "other model" else model
  version = "2" if case == "version 2" else version
  with pytest.raises(triton_utils.InferenceServerException, match=message.replace("[", r"\[")):
    triton.infer(model, [tensor], outputs=outputs, model_version=version)
  assert triton.is_server_ready()


def test_nested_json_data_of_uneven_images_is_refused_in_the_protocols_terms(serving_server):
  blank = [[0] * 28] * 28
  body = {"inputs": [{"name": "images", "shape": [2, 784], "datatype": "UINT8",
                      "data": [blank, [0] * 784]}]}
  response = httpx.post(serving_server.url + open_inference.INFER_PATH, json=body)
  assert response.status_code == 400
  assert response.json() == {"error": "input 'images': 'data' must be flat or nested as the shape "
                                      "[2, 784], but element 0 is 28x28, element 1 has 784 values"}


def test_binary_framing_errors_name_the_problem(serving_server):
  json_part = (b'{"inputs": [{"name": "images", "shape": [1, 784], "datatype": "UINT8", '
               b'"parameters": {"binary_data_size": 784}}]}')
  cases = [
      (json_part + bytes(700), len(json_part), "binary_data_size is 784 but only 700 bytes"),
      (json_part + bytes(800), len(json_part), "800 bytes of binary data follow the JSON, the "
       "inputs declare 784"),
      (json_part + bytes(784), "x", "Inference-Header-Content-Length 'x' must be the byte length"),
      (json_part + bytes(784), len(json_part) - 1, "malformed JSON in the inference request"),
  ]
  with httpx.Client(base_url=serving_server.url) as client:
    for body, header_length, message in cases:
      response = client.post(open_inference.INFER_PATH, content=body,
                             headers={"Inference-Header-Content-Length": str(header_length)})
      assert response.status_code == 400, response.text
      assert response.headers["content-type"] == "application/json"
      assert message in response.json()["error"]
    good = client.post(open_inference.INFER_PATH, content=json_part + bytes(784),
                       headers={"Inference-Header-Content-Length": str(len(json_part))})
    assert good.status_code == 200 and good.json()["outputs"][1]["data"] == [
        int(np.argmax(good.json()["outputs"][0]["data"]))]
