"""The faults found by replaying public reports against the server, each handled as a careful user
expects: the served version keeps serving, a bad version is skipped with the reason in the status
and the metrics, a retried version loads once complete, no traceback on the console, and
`predict` ends with one line and a non-zero exit.

  google-coral/tflite#63, google-coral/edgetpu#812   a libedgetpu.so.1 that is not LiteRT's plugin
                                                     (AttributeError), or one that crashes
  google-coral/tflite#2                              model.tflite compiled for the Edge TPU
  tensorflow/serving#1086                            a version seen while still being written
  tensorflow/serving#1480                            the model directory disappearing or emptying
  python-pillow/Pillow#3011                          16-bit PNGs (serving/preprocess_test.py)
  (no report)                                        no python-multipart; an empty upload;
                                                     slowloris clients

The Edge TPU runtime and compiler output are stand-ins (tests/standins_edgetpu.py).
"""

import asyncio
import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from core import push_manifest
from serving import app as app_lib
from serving import batch_process
from serving import model_store
from serving import open_inference
from tests import fixtures_model
from tests import fixtures_serving
from tests import standins_edgetpu

pytestmark = pytest.mark.integration


def predict_body(count: int = 1) -> dict:
  return {"instances": fixtures_model.slice_eval_digits()[0][:count].tolist()}


def run_predict(destination: str, image: str, env=None) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "serving", "predict", image, "--push-destination",
                         destination], capture_output=True, text=True, check=False, timeout=120,
                        cwd=fixtures_serving.REPO_ROOT,
                        env=dict(env or os.environ, PYTHONPATH=fixtures_serving.REPO_ROOT))


@pytest.fixture
def digit_png(tmp_path) -> str:
  from PIL import Image
  path = str(tmp_path / "digit.png")
  Image.fromarray(fixtures_model.slice_eval_digits()[0][0]).save(path)
  return path


def asgi_get(store: model_store.ModelStore, path: str) -> httpx.Response:
  async def get():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_lib.create_app(store)),
                                 base_url="http://serving") as client:
      return await client.get(path)
  return asyncio.run(get())


@pytest.mark.parametrize("kind, reason", [
    ("not_a_plugin", "is not the TFLite delegate plugin LiteRT expects (no "
     "tflite_plugin_create_delegate"),
    ("crashes", "crashed the probe process (SIGABRT)"),
])
def test_a_broken_libedgetpu_leaves_the_cpu_model_serving(pushed_version, tmp_path, digit_png,
                                                          kind, reason):
  env = dict(os.environ, LD_LIBRARY_PATH=standins_edgetpu.build_libedgetpu(
      str(tmp_path / "lib"), kind))
  destination = str(tmp_path / "dest")
  files = {push_manifest.MODEL_FILE: pushed_version.model_content,
           push_manifest.EDGETPU_MODEL_FILE: pushed_version.model_content}
  fixtures_serving.publish(pushed_version, destination, files)
  server = fixtures_serving.start_server(destination, str(tmp_path / "server.log"),
                                         ["--poll-seconds", "0.3"], env=env)
  try:
    with httpx.Client(base_url=server.url, timeout=30) as client:
      metadata = client.get(app_lib.METADATA_PATH).json()
      assert metadata["device"] == "cpu" and reason in metadata["device_reason"]
      assert client.post(app_lib.PREDICT_PATH, json=predict_body()).status_code == 200
      fixtures_serving.publish(pushed_version, destination, files)  # Hot reload: version 2.
      fixtures_serving.wait_for(lambda: client.get("/readyz").json()["version"] == 2)
      assert reason in client.get(app_lib.METADATA_PATH).json()["device_reason"]
      assert client.post(app_lib.PREDICT_PATH, json=predict_body()).status_code == 200
    assert server.process.poll() is None  # Still up.
  finally:
    server.stop()
  assert "Traceback" not in server.log() and "AttributeError" not in server.log()
  result = run_predict(destination, digit_png, env)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(f"{digit_png}: ") and "Traceback" not in result.stderr


def test_a_model_tflite_compiled_for_the_edgetpu_is_skipped_with_the_reason(
    pushed_version, tmp_path, digit_png):
  compiled = {push_manifest.MODEL_FILE: standins_edgetpu.edgetpu_compiled(
      pushed_version.model_content)}
  reason = "model.tflite holds the Edge TPU's custom operator edgetpu-custom-op"
  destination = fixtures_serving.copy_destination(pushed_version, str(tmp_path / "dest"))
  server = fixtures_serving.start_server(destination, str(tmp_path / "server.log"),
                                         ["--poll-seconds", "0.3"])
  try:
    with httpx.Client(base_url=server.url, timeout=30) as client:
      assert fixtures_serving.publish(pushed_version, destination, compiled) == 2
      fixtures_serving.wait_for(lambda: len(
          client.get(app_lib.MODEL_PATH).json()["model_version_status"]) == 2)
      skipped = client.get(app_lib.MODEL_PATH).json()["model_version_status"][1]
      assert skipped["version"] == "2" and skipped["state"] == "END"
      assert reason in skipped["status"]["error_message"]
      metrics = client.get("/metrics").text
      assert "mnist_serving_model_version 1.0" in metrics
      assert "mnist_serving_failed_versions 1.0" in metrics
      assert 'mnist_serving_version_skipped{reason="version 2: ' + reason in metrics
      answer = client.post(app_lib.PREDICT_PATH, json=predict_body()).json()
      assert answer["model_version"] == "1"
  finally:
    server.stop()
  assert "Traceback" not in server.log()

  # At start-up with only that version: the server starts, not ready, and says why.
  only_bad = str(tmp_path / "only_bad")
  fixtures_serving.publish(pushed_version, only_bad, compiled)
  server = fixtures_serving.start_server(only_bad, str(tmp_path / "server2.log"), ready=False)
  try:
    assert httpx.get(server.url + "/readyz").status_code == 503
    assert httpx.get(server.url + open_inference.READY_PATH).status_code == 400
    assert reason in httpx.get(server.url + app_lib.MODEL_PATH).text
  finally:
    server.stop()
  assert "Traceback" not in server.log()
  result = run_predict(only_bad, digit_png)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  last_line = result.stderr.strip().splitlines()[-1]
  assert last_line.startswith("python -m serving predict failed: cannot predict: no complete "
                              "version to serve under") and reason in last_line


def test_predict_keeps_the_errors_it_meets_and_drops_litert_s_notice(pushed_version, tmp_path,
                                                                      digit_png):
  """predict hides LiteRT's "Created TensorFlow Lite XNNPACK delegate" line by capturing stderr
  while the model loads: what else is written meanwhile (a skipped version) still shows."""
  destination = fixtures_serving.copy_destination(pushed_version, str(tmp_path / "dest"))
  fixtures_serving.publish(pushed_version, destination,
                           {push_manifest.MODEL_FILE: pushed_version.model_content},
                           fixtures_serving.corrupted)
  result = run_predict(destination, digit_png)
  assert result.returncode == 0 and result.stdout.startswith(f"{digit_png}: ")
  lines = result.stderr.splitlines()
  assert lines[0].startswith("ERROR:absl:Not serving version 2: ") and "sha256" in lines[0]
  assert lines[1:] == ["(model version 1, cpu)"], result.stderr


def test_a_version_seen_while_being_copied_loads_once_complete(pushed_version, tmp_path):
  """A copy that is not an atomic publish (gsutil cp, kubectl cp, a storage initializer) is seen
  file by file; the store retries the version whenever its files change."""
  destination = fixtures_serving.copy_destination(pushed_version, str(tmp_path / "dest"))
  store = model_store.ModelStore(destination)
  assert store.refresh().version == 1
  version_dir = os.path.join(destination, "2")
  os.makedirs(version_dir)
  model = pushed_version.model_content
  half = len(model) // 2
  with open(os.path.join(version_dir, push_manifest.MODEL_FILE), "wb") as f:
    f.write(model[:half])
  assert store.refresh().version == 1
  assert "model.json is missing (incomplete" in store.failures[2]
  with open(os.path.join(version_dir, push_manifest.FILE_NAME), "w") as f:
    manifest = dict(pushed_version.manifest, version=2)
    f.write(push_manifest.PushManifest.model_validate(manifest).to_json().decode())
  for name in set(manifest["files"]) - {push_manifest.MODEL_FILE}:  # labels.txt, copied whole.
    shutil.copy(os.path.join(pushed_version.version_dir, name), version_dir)
  assert store.refresh().version == 1
  assert f"model.tflite has {half:,} of the {len(model):,} bytes" in store.failures[2]
  status = asgi_get(store, app_lib.MODEL_PATH).json()["model_version_status"]
  assert [s["state"] for s in status] == ["AVAILABLE", "END"]
  with open(os.path.join(version_dir, push_manifest.MODEL_FILE), "ab") as f:
    f.write(model[half:])
  assert store.refresh().version == 2
  assert store.failures == {}
  assert asgi_get(store, "/readyz").json()["version"] == 2


def test_a_destination_that_disappears_is_reported_and_what_returns_is_served(pushed_version,
                                                                              tmp_path):
  destination = fixtures_serving.copy_destination(pushed_version, str(tmp_path / "dest"))
  model = {push_manifest.MODEL_FILE: pushed_version.model_content}
  fixtures_serving.publish(pushed_version, destination, model)
  store = model_store.ModelStore(destination)
  assert store.refresh().version == 2
  shutil.rmtree(destination)
  assert store.refresh().version == 2  # Still serving, from memory...
  assert "cannot be read" in store.destination_problem  # ...and saying why.
  metrics = asgi_get(store, "/metrics").text
  assert 'mnist_serving_destination_problem{problem="the push destination ' in metrics
  assert "mnist_serving_model_version 2.0" in metrics
  os.makedirs(destination)
  assert store.refresh().version == 2
  assert store.destination_problem.endswith("holds no version")
  # Re-created from scratch: the pusher starts again at version 1, lower than the served 2.
  fixtures_serving.copy_destination(pushed_version, destination)
  assert store.refresh().version == 1
  assert store.destination_problem is None
  assert fixtures_serving.publish(pushed_version, destination, model) == 2
  assert store.refresh().version == 2  # Later versions are picked up again.
  assert "mnist_serving_destination_problem{" not in asgi_get(store, "/metrics").text


def test_without_python_multipart_uploads_answer_501_and_predictions_go_on(pushed_version,
                                                                            tmp_path):
  hidden = tmp_path / "hide_python_multipart"
  hidden.mkdir()
  for module in ("python_multipart", "multipart"):  # Starlette tries both names.
    (hidden / f"{module}.py").write_text(f"raise ModuleNotFoundError('No module {module}')\n")
  server = fixtures_serving.start_server(pushed_version.destination, str(tmp_path / "server.log"),
                                         pythonpath=[str(hidden)])
  try:
    upload = httpx.post(server.url + app_lib.CLASSIFY_IMAGE_PATH,
                        files={"image": ("digit.png", b"\x89PNG", "image/png")})
    assert upload.status_code == 501
    assert upload.headers["content-type"] == "application/json"
    assert "image uploads need the python-multipart package" in upload.json()["error"]
    assert httpx.post(server.url + app_lib.PREDICT_PATH, json=predict_body()).status_code == 200
  finally:
    server.stop()
  assert "Traceback" not in server.log()


def _exchange(port: int, steps, timeout: float = 6.0):
  """(seconds until the server closed or answered, what it sent) for `steps`: bytes to send and
  seconds to wait, in order."""
  sock = socket.create_connection(("127.0.0.1", port))
  sock.settimeout(timeout)
  start, received = time.monotonic(), b""
  with sock:
    try:
      for step in steps:
        if isinstance(step, float):
          time.sleep(step)
        else:
          sock.sendall(step)
    except (BrokenPipeError, ConnectionResetError):
      pass  # The server gave up on us: read what it said.
    try:
      while chunk := sock.recv(4096):
        received += chunk
    except (TimeoutError, ConnectionResetError):
      pass
  return time.monotonic() - start, received


def test_slow_and_idle_clients_are_cut_off(pushed_version, tmp_path):
  server = fixtures_serving.start_server(pushed_version.destination, str(tmp_path / "server.log"),
                                         ["--request-timeout", "1"])
  port = int(server.url.rsplit(":", 1)[1])
  headers = (b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\n"
             b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
  try:
    seconds, answer = _exchange(port, [])  # Connects and says nothing.
    assert seconds < 3 and answer == b""
    seconds, answer = _exchange(port, [b"GET /healthz HTTP/1.1\r\n", 0.4, b"Host: x\r\n", 0.4,
                                       b"X-Slow: 1\r\n", 0.4, b"X-Slow: 2\r\n"])  # Drips headers.
    assert seconds < 3 and answer == b""
    for steps in ([headers], [headers] + [b"x", 0.3] * 10):  # No body; a trickling body.
      seconds, answer = _exchange(port, steps)
      assert seconds < 3 and answer.startswith(b"HTTP/1.1 408 ")
      assert b'{"error":"the request body did not arrive within 1 s"}' in answer
    seconds, answer = _exchange(port, [b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])  # Idles.
    assert seconds < 3 and answer.startswith(b"HTTP/1.1 200 ")
    assert httpx.post(server.url + app_lib.PREDICT_PATH, json=predict_body()).status_code == 200
  finally:
    server.stop()
  assert "Traceback" not in server.log()


def test_the_server_stops_on_sigterm_with_its_batch_process(pushed_version, tmp_path):
  """A worker process's exit joins its child processes before any atexit hook runs, so a batch
  process still open hung the server on SIGTERM (and a killed server orphaned it)."""
  import psutil
  server = fixtures_serving.start_server(pushed_version.destination, str(tmp_path / "log"))
  try:
    answer = httpx.post(server.url + app_lib.PREDICT_PATH, json=predict_body(64), timeout=60)
    assert answer.status_code == 200  # 64 images: over the inline limit, the batch process.
    family = psutil.Process(server.process.pid).children(recursive=True)
    assert any("spawn_main" in " ".join(p.cmdline()) for p in family)
    server.process.terminate()
    # uvicorn shuts down, then ends by the signal it caught.
    assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)
    gone, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert len(gone) == len(family)
  finally:
    server.stop()


def _batch_processes(server: fixtures_serving.Server, count: int) -> list:
  """The server's batch processes (below its priority), after batches until `count` exist: with
  several workers, whichever accepts a connection answers it."""
  import psutil
  niceness = psutil.Process(server.process.pid).nice() + batch_process.NICENESS
  found: list = []
  for _ in range(10):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # A connection each.
      answers = list(pool.map(lambda _: httpx.post(
          server.url + app_lib.PREDICT_PATH, json=predict_body(64), timeout=60), range(4)))
    assert all(answer.status_code == 200 for answer in answers)
    found = [p for p in psutil.Process(server.process.pid).children(recursive=True)
             if p.nice() == niceness]
    if len(found) >= count:
      break
  return found


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_server_and_its_processes_without_a_traceback(pushed_version, tmp_path,
                                                                       workers):
  """Ctrl-C sends SIGINT to the terminal's whole process group: the server, its uvicorn workers
  and their batch processes. It printed a KeyboardInterrupt traceback from the server (uvicorn
  raises SIGINT again once shut down) and from each batch process, and ended with -2."""
  import psutil
  server = fixtures_serving.start_server(pushed_version.destination, str(tmp_path / "log"),
                                         ["--workers", str(workers)], new_session=True)
  try:
    batch = _batch_processes(server, workers)
    assert len(batch) == workers  # Each worker has one.
    family = psutil.Process(server.process.pid).children(recursive=True)
    os.killpg(server.process.pid, signal.SIGINT)
    assert server.process.wait(timeout=30) == 0
    gone, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
  finally:
    server.stop()
  log = server.log()
  assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
  assert "(Ctrl-C to stop)" in log
