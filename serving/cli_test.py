"""`mnist-tfx predict` and `serve` as a user runs them (the installed console script)."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from core import int8_runtime
from serving import preprocess
from tests import fixtures_model
from tests import fixtures_serving

MNIST_TFX = os.path.join(os.path.dirname(sys.executable), "mnist-tfx")


def run(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([MNIST_TFX, *args], capture_output=True, text=True, check=False,
                        cwd=fixtures_serving.REPO_ROOT, timeout=120)


def test_help_lists_serve_and_predict_with_the_pushers_default_destination():
  help_text = run("predict", "--help").stdout
  assert "--push-destination" in help_text and "output/pushed_models" in help_text
  assert "--model-version" in help_text and "--json" in help_text
  assert "Classify with version N only" in " ".join(help_text.split())
  assert "Serve version" not in " ".join(help_text.split())  # predict serves nothing.
  serve_help = run("serve", "--help").stdout
  assert "127.0.0.1" in serve_help and "--port" in serve_help
  assert "Serve version N only" in " ".join(serve_help.split())


@pytest.mark.integration
def test_predict_prints_class_and_probability_per_file(pushed_version, tmp_path):
  images, labels = fixtures_model.slice_eval_digits()
  paths = []
  for i in range(3):  # Dark ink on white paper, 4x larger, as a scan would be.
    path = str(tmp_path / f"digit_{i}.png")
    Image.fromarray(255 - np.kron(images[i], np.ones((4, 4), np.uint8))).save(path)
    paths.append(path)
  bad = str(tmp_path / "not_an_image.png")
  with open(bad, "w") as f:
    f.write("hello")
  classifier = int8_runtime.Int8Classifier(pushed_version.model_content)
  expected = []
  for path in paths:
    with open(path, "rb") as f:
      expected.append(classifier.predict_pixels(preprocess.image_to_mnist(f.read())[None])[0])

  result = run("predict", *paths, "--push-destination", pushed_version.destination)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines == [f"{path}: {p.argmax()} ({p.max():.1%})" for path, p in zip(paths, expected,
                                                                               strict=True)]
  assert result.stderr == "(model version 1, cpu)\n"  # Not LiteRT's XNNPACK notice.
  assert sum(int(p.argmax()) == label for p, label in zip(expected, labels[:3], strict=True)) >= 2

  result = run("predict", paths[0], bad, "--json", "--push-destination",
               pushed_version.destination, "--model-version", "1")
  assert result.returncode == 2
  record = json.loads(result.stdout)
  assert record["file"] == paths[0] and record["class"] == int(expected[0].argmax())
  assert record["probabilities"] == [float(p) for p in expected[0]]
  assert record["model_version"] == 1 and record["device"] == "cpu"
  assert f"{bad}: error: not a PNG or JPEG image" in result.stderr

  nothing = str(tmp_path / "nothing")
  result = run("predict", paths[0], "--push-destination", nothing)
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr == (f"mnist-tfx predict failed: cannot predict: the push destination "
                           f"{nothing} cannot be read ([Errno 2] No such file or directory: "
                           f"'{nothing}')\n")  # The one line: no warning logged before it.

  result = run("predict", paths[0], "--push-destination", pushed_version.destination,
               "--model-version", "7")
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr == (f"mnist-tfx predict failed: cannot predict: no version 7 to serve "
                           f"under {pushed_version.destination}\n")
  result = run("predict", paths[0], "--model-version", "0")  # Versions start at 1.
  assert result.returncode == 2 and "--model-version: must be 1 or more" in result.stderr
