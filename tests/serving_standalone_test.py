"""Serving runs with serving's own dependencies alone and the source files its image copies.

A fresh virtualenv gets only serving/requirements.txt (at the versions of requirements.lock), and a
fresh directory only what serving/Dockerfile COPYs (read from the Dockerfile itself, so the image's
file set cannot drift from what serving imports without this test failing): `--help`, the server
on a real pushed version and `predict` on real digits must all work there, and answer what the int8
runtime answers in this process.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import httpx
from PIL import Image
import pytest

from core import int8_runtime
from serving import preprocess
from tests import fixtures_serving
from tests import mnist_slices

pytestmark = pytest.mark.integration

ROOT = str(mnist_slices.REPO_ROOT)
DOCKERFILE = os.path.join(ROOT, "serving", "Dockerfile")
UV = os.path.join(os.path.dirname(sys.executable), "uv")
NUM_DIGITS = 8


def copied_sources() -> list:
  """(source, destination) of each directory serving/Dockerfile COPYs from the checkout."""
  with open(DOCKERFILE) as f:
    copies = re.findall(r"^COPY\s+(\S+)\s+(\S+)\s*$", f.read(), re.MULTILINE)
  return [(src, dest) for src, dest in copies if os.path.isdir(os.path.join(ROOT, src))]


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
  """(python of a venv with serving's dependencies only, an app dir with the copied sources)."""
  work = tmp_path_factory.mktemp("standalone")
  venv = work / "venv"
  subprocess.run(["python3.10", "-m", "venv", "--without-pip", str(venv)], check=True)
  python = str(venv / "bin" / "python")
  subprocess.run([UV, "pip", "install", "-q", "--python", python,
                  "-c", os.path.join(ROOT, "requirements.lock"),
                  "-r", os.path.join(ROOT, "serving", "requirements.txt")], check=True)
  app = work / "app"
  for src, dest in copied_sources():
    shutil.copytree(os.path.join(ROOT, src), app / dest,
                    ignore=shutil.ignore_patterns("*_test.py", "__pycache__", "Dockerfile"))
  return python, str(app)


def clean_env(app: str) -> dict:
  return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "PYTHONPATH": app}


def run_serving(standalone, *args) -> subprocess.CompletedProcess:
  python, app = standalone
  return subprocess.run([python, "-m", "serving", *args], cwd=app, env=clean_env(app),
                        text=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def digits(pushed_version):
  """(uint8 pixels [N, 28, 28] of real test digits, the int8 runtime's classes for them)."""
  pixels, _ = mnist_slices.load_full("eval")
  pixels = pixels[:NUM_DIGITS]
  classifier = int8_runtime.Int8Classifier(pushed_version.model_content, num_threads=1)
  expected = [int(classifier.predict_pixels(image[None]).argmax()) for image in pixels]
  return pixels, expected


def test_the_image_copies_core_and_serving_only():
  assert sorted(src for src, _ in copied_sources()) == ["core", "serving"]


def test_nothing_but_serving_s_dependencies_is_installed(standalone):
  python, _ = standalone
  found = subprocess.run([python, "-c", "import importlib.util as u; print([m for m in "
                          "('tensorflow', 'tfx', 'apache_beam', 'keras') if u.find_spec(m)])"],
                         capture_output=True, text=True, check=True).stdout.strip()
  assert found == "[]"


def test_help_answers(standalone):
  result = run_serving(standalone, "--help")
  assert result.returncode == 0, result.stderr
  assert "serve" in result.stdout and "predict" in result.stdout


def test_predict_gives_the_int8_runtime_s_answers(standalone, pushed_version, digits, tmp_path):
  pixels, _ = digits
  classifier = int8_runtime.Int8Classifier(pushed_version.model_content, num_threads=1)
  paths, expected = [], []
  for i, image in enumerate(pixels):
    paths.append(str(tmp_path / f"digit{i}.png"))
    Image.fromarray(image).save(paths[-1])
    with open(paths[-1], "rb") as f:  # predict's own preprocessing, then the int8 runtime.
      expected.append(int(classifier.predict_pixels(preprocess.image_to_mnist(f.read())[None])
                          .argmax()))
  result = run_serving(standalone, "predict", "--json", "--push-destination",
                       pushed_version.destination, *paths)
  assert result.returncode == 0, result.stderr
  answers = [json.loads(line) for line in result.stdout.splitlines()]
  assert [(answer["file"], answer["class"]) for answer in answers] == list(zip(paths, expected,
                                                                               strict=True))


def test_the_server_answers_predict_as_the_int8_runtime_does(standalone, pushed_version, digits,
                                                            tmp_path):
  python, app = standalone
  pixels, expected = digits
  server = fixtures_serving.start_server(pushed_version.destination, str(tmp_path / "server.log"),
                                         python=python, source_root=app, env=clean_env(app))
  try:
    answer = httpx.post(server.url + "/v1/models/mnist:predict",
                        json={"instances": pixels.astype(int).tolist()}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["classes"] == expected
  finally:
    server.stop()
