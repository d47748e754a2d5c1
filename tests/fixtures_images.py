"""Session fixtures: the stand-in base and the two images, built once per session with buildah.

`python_standin` is built once per machine and reused between sessions (tests/python_standin.sh,
cache in ~/.cache/python-standin); the images are rebuilt every session by `make images`' script,
which buildah's layer cache turns into seconds when their inputs did not change. Nothing is skipped:
on a machine where buildah cannot build and run images, every image test fails with the reason.
"""

import pytest

from tests import images


@pytest.fixture(scope="session")
def image_logs(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("image_logs"))


@pytest.fixture(scope="session")
def python_standin(image_logs) -> str:
  """The ID of localhost/python-standin:3.10-slim, a STAND-IN of python:3.10-slim."""
  problem = images.buildah_problem()
  if problem:
    pytest.fail(f"cannot build the images here: {problem}", pytrace=False)
  return images.ensure_standin(f"{image_logs}/python_standin.log")


@pytest.fixture(scope="session")
def serving_image(python_standin, image_logs) -> str:
  """The ID of the image serving/Dockerfile builds (on the stand-in base)."""
  return images.build("serving", f"{image_logs}/serving.log")


@pytest.fixture(scope="session")
def kubeflow_image(python_standin, image_logs) -> str:
  """The ID of the image kubeflow/Dockerfile builds (stand-in base, EDGETPU_COMPILER=skip)."""
  return images.build("kubeflow", f"{image_logs}/kubeflow.log")
