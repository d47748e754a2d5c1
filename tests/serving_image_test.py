"""The serving image, built from serving/Dockerfile, serves as the README says.

The image is built by `make images`' script with buildah on a stand-in of python:3.10-slim
(tests/images.py) and started with its own ENTRYPOINT and CMD and the README's `docker run`
mount, a real pushed version read-only at /models: it runs as a non-root user, holds no TensorFlow,
answers `:predict` on real digits as the int8 runtime does in this process, and keeps serving when
a bad version is published beside the good one.
"""

import json
import os
import re
import shlex
import time

import httpx
import numpy as np
import pytest

from components.pusher import versioned_push
from core import hashing
from core import int8_runtime
from core import push_manifest
from tests import fixtures_serving
from tests import images
from tests import mnist_slices

README = os.path.join(images.ROOT, "README.md")
NUM_DIGITS = 8
NOBODY_UID = 65534
HEAVY_MODULES = ("tensorflow", "tfx", "apache_beam", "keras", "tensorflow_data_validation")


def readme_docker_run() -> list:
  """The README's `docker run ... mnist-edgetpu-serving` command, as arguments."""
  with open(README) as f:
    (line,) = re.findall(r"^docker run .*mnist-edgetpu-serving$", f.read(), re.MULTILINE)
  return shlex.split(line)


def flag_values(argv: list, flag: str) -> list:
  return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


@pytest.fixture(scope="module")
def models(pushed_version, tmp_path_factory) -> str:
  """A destination holding a copy of the real pushed version 1 (mounted read-only)."""
  return fixtures_serving.copy_destination(pushed_version,
                                           str(tmp_path_factory.mktemp("models") / "pushed"))


@pytest.fixture(scope="module")
def server(serving_image, models, tmp_path_factory):
  """The image's own command with the README's mount; its port moved to a free one of the host."""
  (mount,) = flag_values(readme_docker_run(), "-v")
  target = mount.split(":", 1)[1]  # "/models:ro"
  port = fixtures_serving.free_port()
  container = images.Container(
      serving_image, images.image_command(serving_image) + ["--port", str(port)],
      images.RunOptions(volumes={models: target}),
      str(tmp_path_factory.mktemp("serving_image") / "server.log"))
  with container:
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not _ready(url):
      assert container.process.poll() is None, container.log()
      assert time.monotonic() < deadline, "no /readyz 200 in 120 s:\n" + container.log()
      time.sleep(0.3)
    yield container, url
  assert "exited on terminated" in container.log()  # SIGTERM reached the server: graceful stop.


def _ready(url: str) -> bool:
  try:
    return httpx.get(url + "/readyz", timeout=2).status_code == 200
  except httpx.TransportError:
    return False


def test_the_image_command_is_the_one_the_readme_runs(serving_image):
  docker_run = readme_docker_run()
  (ports,) = flag_values(docker_run, "-p")
  (mount,) = flag_values(docker_run, "-v")
  command = images.image_command(serving_image)
  assert command[:4] == ["python", "-m", "serving", "serve"]
  assert flag_values(command, "--port") == [ports.split(":")[1]]
  assert flag_values(command, "--push-destination") == [mount.split(":")[1]]
  assert mount.endswith(":ro")


def test_it_serves_the_mounted_version_as_a_non_root_user(server):
  container, url = server
  assert httpx.get(url + "/readyz").json()["version"] == 1
  with open(f"/proc/{container.command_pid()}/status") as f:
    (uids,) = [line.split()[1:] for line in f if line.startswith("Uid:")]
  assert uids == [str(NOBODY_UID)] * 4  # real, effective, saved, filesystem


def test_the_image_has_no_tensorflow_tfx_or_beam(serving_image):
  script = ("import importlib.util as u, sys; "
            "print([m for m in sys.argv[1:] if u.find_spec(m)])")
  result = images.run(serving_image, ["python", "-c", script, *HEAVY_MODULES])
  assert result.stdout.strip() == "[]", result.stdout


def test_predict_answers_what_the_int8_runtime_gives(server, pushed_version):
  _, url = server
  pixels, _ = mnist_slices.load_full("eval")
  pixels = pixels[:NUM_DIGITS]
  classifier = int8_runtime.Int8Classifier(pushed_version.model_content, num_threads=1)
  expected = np.concatenate([classifier.predict_pixels(image[None]) for image in pixels])
  answer = httpx.post(url + "/v1/models/mnist:predict",
                      json={"instances": pixels.astype(int).tolist()}, timeout=30)
  assert answer.status_code == 200, answer.text
  assert answer.json()["classes"] == expected.argmax(axis=1).tolist()
  np.testing.assert_allclose(answer.json()["predictions"], expected, atol=1e-6)
  assert answer.json()["model_version"] == "1"


def truncated_version_manifest(pushed: fixtures_serving.PushedVersion, model: bytes):
  """The manifest renderer of a version whose listed model is `model` (sha256 and size right)."""
  files = {push_manifest.MODEL_FILE: {"sha256": hashing.sha256_bytes(model),
                                      "size_bytes": len(model)}}
  return lambda version: json.dumps({**pushed.manifest, "version": version,
                                     "files": files}).encode()


def test_a_bad_version_beside_it_is_skipped_and_serving_goes_on(server, models, pushed_version):
  _, url = server
  truncated = pushed_version.model_content[:len(pushed_version.model_content) // 2]
  bad, _ = versioned_push.publish_version(
      models, {push_manifest.MODEL_FILE: truncated}, push_manifest.FILE_NAME,
      truncated_version_manifest(pushed_version, truncated))
  deadline = time.monotonic() + 60
  while not (statuses := _failed_versions(url)):
    assert time.monotonic() < deadline, "the bad version was not reported in 60 s"
    time.sleep(0.5)
  assert list(statuses) == [str(bad)] and "does not load" in statuses[str(bad)], statuses
  pixels, _ = mnist_slices.load_full("eval")
  answer = httpx.post(url + "/v1/models/mnist:predict",
                      json={"instances": pixels[:1].astype(int).tolist()}, timeout=30)
  assert answer.status_code == 200 and answer.json()["model_version"] == "1", answer.text
  assert "mnist_serving_failed_versions 1.0" in httpx.get(url + "/metrics").text
  assert os.listdir(os.path.join(models, "1")) == os.listdir(pushed_version.version_dir)


def _failed_versions(url: str) -> dict:
  statuses = httpx.get(url + "/v1/models/mnist").json()["model_version_status"]
  return {s["version"]: s["status"]["error_message"] for s in statuses if s["state"] == "END"}
