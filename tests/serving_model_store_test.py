"""Version discovery, sha256 verification, Edge TPU fallback, hot reload under load, no TensorFlow.

New versions are published with the pusher's own atomic publish (components/pusher/versioned_push),
as a push during a run does.
"""

import asyncio
import os
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from components.pusher import versioned_push
from core import contract
from core import push_manifest
from serving import app as app_lib
from serving import model_store
from tests import fixtures_model
from tests import fixtures_serving
from tests import pusher_runs

pytestmark = pytest.mark.integration


def test_newest_good_version_serves_and_bad_ones_are_skipped(pushed_version, tmp_path):
  destination = fixtures_serving.copy_destination(pushed_version, str(tmp_path / "dest"))
  model = {push_manifest.MODEL_FILE: pushed_version.model_content}
  publish = fixtures_serving.publish
  assert publish(pushed_version, destination, model) == 2
  assert publish(pushed_version, destination, model, fixtures_serving.corrupted) == 3
  assert publish(pushed_version, destination, {push_manifest.MODEL_FILE: b"not a flatbuffer"}) == 4
  os.makedirs(os.path.join(destination, f"{versioned_push.TEMP_PREFIX}in-progress"))
  store = model_store.ModelStore(destination)
  assert store.refresh().version == 2
  assert sorted(store.failures) == [3, 4]
  assert "model.tflite has sha256" in store.failures[3] and "0" * 64 in store.failures[3]
  assert "does not load" in store.failures[4]
  pinned = model_store.ModelStore(destination, pinned_version=1)
  assert pinned.refresh().version == 1 and pinned.failures == {}
  assert model_store.ModelStore(destination, pinned_version=3).refresh() is None


def test_a_labels_file_that_is_not_the_pushed_one_is_refused(pushed_version, tmp_path):
  """labels.txt (Coral's label file) is listed in model.json and verified like the model."""
  assert push_manifest.LABELS_FILE in pushed_version.manifest["files"]
  destination = fixtures_serving.copy_destination(pushed_version, str(tmp_path / "dest"))
  labels_path = os.path.join(destination, "1", push_manifest.LABELS_FILE)
  with open(labels_path, "rb") as f:
    labels = f.read()
  with open(labels_path, "wb") as f:  # The same size, two labels swapped.
    f.write(labels.replace(b"0\n1\n", b"1\n0\n", 1))
  store = model_store.ModelStore(destination)
  assert store.refresh() is None
  assert "labels.txt has sha256" in store.failures[1]
  assert "refusing a file that is not the pushed one" in store.failures[1]


def test_a_version_with_int8_io_serves_the_same_answers_as_the_uint8_default(
    pushed_version, trained_model_dir, tmp_path):
  """The loader and predict_pixels take either I/O type: pixels are quantized with the model's
  own scale and zero point (core.int8_runtime)."""
  int8_dir = pusher_runs.push_slice_model(tmp_path, trained_model_dir, contract.INT8_IO)
  loaded = {io_dtype: model_store.load_version(os.path.dirname(version_dir), 1)
            for io_dtype, version_dir in ((contract.UINT8_IO, pushed_version.version_dir),
                                          (contract.INT8_IO, int8_dir))}
  images, _ = fixtures_model.slice_eval_digits()
  for io_dtype, version in loaded.items():
    assert version.manifest.input.dtype == version.manifest.output.dtype == io_dtype
    assert version.device == model_store.CPU
  np.testing.assert_array_equal(loaded[contract.UINT8_IO].predict_pixels(images),
                                loaded[contract.INT8_IO].predict_pixels(images))


def test_edgetpu_model_without_delegate_library_serves_the_cpu_model_and_says_why(
    pushed_version, tmp_path):
  destination = str(tmp_path / "dest")
  # A stand-in for edgetpu_compiler's output (none can be compiled here): the CPU model's bytes
  # under the Edge TPU name. The delegate fails to load before the bytes matter.
  fixtures_serving.publish(pushed_version, destination,
                           {push_manifest.MODEL_FILE: pushed_version.model_content,
                            push_manifest.EDGETPU_MODEL_FILE: pushed_version.model_content})
  store = model_store.ModelStore(destination)
  loaded = store.refresh()
  assert loaded.version == 1 and loaded.device == model_store.CPU
  assert "model_edgetpu.tflite present but the Edge TPU delegate libedgetpu.so.1 did not load" \
      in loaded.device_reason
  assert loaded.device_reason.endswith("running model.tflite on the CPU")
  # GET metadata reports it (in-process ASGI request).
  metadata = asyncio.run(asgi_get(app_lib.create_app(store), app_lib.METADATA_PATH)).json()
  assert metadata["device"] == "cpu" and metadata["device_reason"] == loaded.device_reason
  assert sorted(metadata["files"]) == [push_manifest.MODEL_FILE,
                                       push_manifest.EDGETPU_MODEL_FILE]


async def asgi_get(app, path: str) -> httpx.Response:
  async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://serving") as client:
    return await client.get(path)


def test_hot_reload_under_a_request_loop(pushed_version, tmp_path):
  destination = str(tmp_path / "dest")
  server = fixtures_serving.start_server(destination, str(tmp_path / "server.log"),
                                         ["--poll-seconds", "0.3"], ready=False)
  try:
    with httpx.Client(base_url=server.url, timeout=30) as client:
      # Nothing pushed yet: alive, not ready.
      assert client.get("/healthz").status_code == 200
      assert client.get("/readyz").status_code == 503
      assert client.post(app_lib.PREDICT_PATH, json={"instances": [[0] * 784]}).status_code == 503
      fixtures_serving.copy_destination(pushed_version, destination)
      fixtures_serving.wait_for(lambda: client.get("/readyz").status_code == 200)

      images = fixtures_model.slice_eval_digits()[0][:4].tolist()
      # One list per client: the order in which two threads append to a shared list is not the
      # order in which the server answered, so version monotonicity is checked per client.
      per_client, stop = [[], []], threading.Event()
      outcomes = per_client[0]  # The first client's answers, newest last.

      def request_loop(answers):
        with httpx.Client(base_url=server.url, timeout=30) as loop_client:
          while not stop.is_set():
            try:
              response = loop_client.post(app_lib.PREDICT_PATH, json={"instances": images})
              answers.append((response.status_code, response.json().get("model_version")))
            except httpx.HTTPError as e:
              answers.append((repr(e), None))

      threads = [threading.Thread(target=request_loop, args=(answers,)) for answers in per_client]
      for thread in threads:
        thread.start()
      try:
        time.sleep(0.5)
        fixtures_serving.publish(pushed_version, destination,
                                 {push_manifest.MODEL_FILE: pushed_version.model_content})
        fixtures_serving.wait_for(lambda: outcomes and outcomes[-1][1] == "2")
        fixtures_serving.publish(pushed_version, destination,
                                 {push_manifest.MODEL_FILE: pushed_version.model_content},
                                 fixtures_serving.corrupted)
        fixtures_serving.wait_for(lambda: len(
            client.get(app_lib.MODEL_PATH).json()["model_version_status"]) == 2)
        time.sleep(0.5)
      finally:
        stop.set()
        for thread in threads:
          thread.join()
      status = client.get(app_lib.MODEL_PATH).json()["model_version_status"]
      metrics = client.get("/metrics").text
  finally:
    server.stop()
  all_outcomes = [outcome for answers in per_client for outcome in answers]
  failures = [outcome for outcome in all_outcomes if outcome[0] != 200]
  assert not failures, f"{len(failures)} of {len(all_outcomes)} requests failed: {failures[:5]}"
  for answers in per_client:
    versions = [version for _, version in answers]
    assert {"1", "2"} <= set(versions) and versions[-1] == "2"
    assert versions == sorted(versions)  # A client once answered by version 2 never sees 1 again.
  assert status[0] == {"version": "2", "state": "AVAILABLE",
                       "status": {"error_code": "OK", "error_message": ""}}
  assert status[1]["version"] == "3" and status[1]["state"] == "END"
  assert "model.tflite has sha256" in status[1]["status"]["error_message"]
  assert "mnist_serving_failed_versions 1.0" in metrics
  assert "Not serving version 3" in server.log()


NO_TENSORFLOW_CHECK = """
import asyncio
import sys
import httpx
from serving import app, cli, model_store, preprocess
from serving import __main__ as serving_main
from mnist_tfx import cli as mnist_cli
mnist_cli.build_parser()
store = model_store.ModelStore(sys.argv[1])
store.refresh()

async def requests():
  async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.create_app(store)),
                               base_url="http://serving") as client:
    response = await client.post(app.PREDICT_PATH, json={"instances": [[0] * 784]})
    assert response.status_code == 200, response.text
    assert (await client.get(app.METADATA_PATH)).status_code == 200
    assert (await client.get("/")).status_code == 200
asyncio.run(requests())
assert serving_main.main(["predict", "--push-destination", sys.argv[1], sys.argv[2]]) == 0
print(sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "tfx", "keras")))
"""


def test_serving_never_imports_tensorflow(pushed_version, tmp_path):
  from PIL import Image
  image = str(tmp_path / "digit.png")
  Image.fromarray(np.asarray(fixtures_model.slice_eval_digits()[0][0])).save(image)
  result = subprocess.run(
      [sys.executable, "-c", NO_TENSORFLOW_CHECK, pushed_version.destination, image],
      capture_output=True, text=True, cwd=fixtures_serving.REPO_ROOT, check=False,
      env=dict(os.environ, PYTHONPATH=fixtures_serving.REPO_ROOT))
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().splitlines()[-1] == "[]"
