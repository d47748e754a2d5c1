"""Fixtures of the Kubeflow tests: the wheel the image installs, built from this checkout."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What setup.py packages (a copy is built, so the checkout gets no build/ or egg-info).
PROJECT_FILES = ("setup.py", "README.md")
PROJECT_DIRS = ("components", "pipeline", "trainer_module", "serving", "mnist_tfx", "kubeflow")


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory) -> str:
  """The project's wheel, built as kubeflow/Dockerfile builds it (`pip wheel --no-deps`)."""
  source = tmp_path_factory.mktemp("wheel_source")
  for name in PROJECT_FILES:
    shutil.copy(os.path.join(PROJECT_ROOT, name), source)
  for name in PROJECT_DIRS:
    shutil.copytree(os.path.join(PROJECT_ROOT, name), source / name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  out = tmp_path_factory.mktemp("wheel")
  subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                  "--no-build-isolation", "-w", str(out), str(source)], check=True)
  (wheel,) = out.glob("*.whl")
  return str(wheel)


@pytest.fixture(scope="session")
def unpacked_wheel(project_wheel, tmp_path_factory) -> str:
  """The wheel's files as site-packages would hold them (for PYTHONPATH)."""
  target = tmp_path_factory.mktemp("wheel_site")
  with zipfile.ZipFile(project_wheel) as wheel:
    wheel.extractall(target)
  return str(target)
