"""The project's wheel, built as kubeflow/Dockerfile builds it, from a copy of the checkout.

What goes into the wheel is setup.py's to decide (its package list is the only one); the copy
leaves out only what is not source (the data, virtualenvs, outputs, caches), so that the checkout
gets no build/ or egg-info directory.
"""

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests import mnist_slices

NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "data", "output", "__pycache__", "*.pyc",
                                    "build", "*.egg-info")


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory) -> str:
  """The project's wheel (`pip wheel --no-deps`, as kubeflow/Dockerfile builds it)."""
  source = tmp_path_factory.mktemp("wheel_source") / "project"
  shutil.copytree(mnist_slices.REPO_ROOT, source, ignore=NOT_SOURCE)
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
