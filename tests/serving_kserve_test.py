"""The KServe deployment (serving/kserve/inferenceservice.yaml) as KServe and the image read it.

  * KServe's rules for a custom predictor (kserve/kserve pkg/apis/serving/v1beta1/
    predictor_custom.go, pkg/constants): the container is `kserve-container`, its env
    STORAGE_URI is the storageUri the storage initializer copies into /mnt/models, PROTOCOL is v1
    or v2.
  * The container's args run the serving image's entry point (`python -m serving`, see
    serving/Dockerfile) on loopback over what the storage initializer leaves in /mnt/models (a
    copy of the push destination), and the server answers the manifest's probes.
  * kserve's own package (in a venv of its own: tests/kserve_client/requirements.in says why)
    reads the manifest into its V1beta1InferenceService model, and its InferenceRESTClient (V2
    with binary and JSON tensors, V1) gets the int8 runtime's predictions from that server.
"""

import json
import os
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest
from tritonclient import http as triton_http
import yaml

from core import int8_runtime
from serving import __main__ as serving_main
from tests import fixtures_model
from tests import fixtures_serving

pytestmark = pytest.mark.integration

MANIFEST = os.path.join(fixtures_serving.REPO_ROOT, "serving", "kserve", "inferenceservice.yaml")
KSERVE_CLIENT = os.path.join(fixtures_serving.REPO_ROOT, "tests", "kserve_client")
MODEL_MOUNT = "/mnt/models"  # KServe's DefaultModelLocalMountPath.
UV = os.path.join(os.path.dirname(sys.executable), "uv")


def container() -> dict:
  with open(MANIFEST) as f:
    manifest = yaml.safe_load(f)
  assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
  assert manifest["kind"] == "InferenceService"
  (predictor_container,) = manifest["spec"]["predictor"]["containers"]
  return predictor_container


def test_the_manifest_is_a_custom_predictor_with_its_model_from_storage():
  spec = container()
  assert spec["name"] == "kserve-container"
  env = {variable["name"]: variable["value"] for variable in spec["env"]}
  assert env["STORAGE_URI"].startswith(("gs://", "s3://")) and env["PROTOCOL"] == "v2"
  args = serving_main.build_parser().parse_args(spec["args"])
  assert args.command == "serve" and args.push_destination == MODEL_MOUNT
  assert args.host == "0.0.0.0"
  assert [port["containerPort"] for port in spec["ports"]] == [args.port]
  for probe in ("readinessProbe", "livenessProbe"):
    assert spec[probe]["httpGet"]["port"] == args.port


@pytest.fixture(scope="module")
def manifest_server(pushed_version, tmp_path_factory):
  """The container's args run on loopback over a copy of the push destination in /mnt/models."""
  work = tmp_path_factory.mktemp("kserve")
  models = str(work / "mnt_models")
  shutil.copytree(pushed_version.destination, models)  # What the storage initializer leaves.
  port = fixtures_serving.free_port()
  local = {MODEL_MOUNT: models, "0.0.0.0": "127.0.0.1", str(container()["ports"][0][
      "containerPort"]): str(port)}
  args = [local.get(arg, arg) for arg in container()["args"]]
  server = fixtures_serving.start_server(models, str(work / "server.log"), args=args, port=port)
  yield server
  server.stop()


def test_the_manifests_args_serve_and_answer_its_probes(manifest_server):
  spec = container()
  for probe in ("readinessProbe", "livenessProbe"):
    assert httpx.get(manifest_server.url + spec[probe]["httpGet"]["path"]).status_code == 200
  triton = triton_http.InferenceServerClient(manifest_server.url.removeprefix("http://"))
  assert triton.is_model_ready("mnist")


@pytest.fixture(scope="module")
def kserve_python(tmp_path_factory) -> str:
  """A venv with kserve from tests/kserve_client/requirements.lock."""
  venv = tmp_path_factory.mktemp("kserve_venv") / "venv"
  subprocess.run(["python3.10", "-m", "venv", "--without-pip", str(venv)], check=True)
  python = str(venv / "bin" / "python")
  subprocess.run([UV, "pip", "install", "-q", "--python", python, "-r",
                  os.path.join(KSERVE_CLIENT, "requirements.lock")], check=True)
  return python


@pytest.mark.slow
def test_kserves_models_read_the_manifest_and_its_rest_client_gets_the_int8_predictions(
    manifest_server, kserve_python, pushed_version, tmp_path):
  images = fixtures_model.slice_eval_digits()[0][:8]
  np.save(tmp_path / "images.npy", images[..., None])
  result = subprocess.run([kserve_python, os.path.join(KSERVE_CLIENT, "kserve_checks.py"),
                           MANIFEST, manifest_server.url, str(tmp_path / "images.npy")],
                          capture_output=True, text=True, check=False, timeout=300)
  assert result.returncode == 0, result.stderr
  answers = json.loads(result.stdout)
  assert answers["manifest"]["container_type"] == "V1Container"
  assert answers["manifest"]["args"] == container()["args"]
  assert answers["server_ready"] is True and answers["model_ready"] is True
  classifier = int8_runtime.Int8Classifier(pushed_version.model_content, num_threads=1)
  expected = np.concatenate([classifier.predict_pixels(image[None]) for image in images])
  for protocol in ("v2_binary", "v2_json"):
    assert np.array_equal(np.asarray(answers[protocol]["probabilities"], np.float32), expected)
    assert answers[protocol]["classes"] == expected.argmax(axis=1).tolist()
    assert answers[protocol]["id"] == "kserve"
  assert np.array_equal(np.asarray(answers["v1"]["predictions"], np.float32), expected)
