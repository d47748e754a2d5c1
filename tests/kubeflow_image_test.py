"""The Kubeflow image, built from kubeflow/Dockerfile, holds what the compiled spec runs.

Built by `make images`' script with buildah on a stand-in of python:3.10-slim and with
EDGETPU_COMPILER=skip (Coral's apt repository is not reachable here; tests/images.py): its command
is the spec's, the project's wheel and the curated schema (package data) are installed, and nothing
used only to build is left. The compiled spec's tasks run in it in
tests/kubeflow_spec_execution_test.py.
"""

import json

from mnist_tfx.kubeflow import runner

from pipeline import pipeline as pipeline_def
import setup
from tests import images

WHEEL = "/opt/wheels/mnist_edgetpu_tfx-0.1.0-py3-none-any.whl"
SITE_PACKAGES = "/opt/venv/lib/python3.10/site-packages"


def run_python(image: str, script: str) -> str:
  """The last line `script` prints in the image (exit code 0 asserted)."""
  result = images.run(image, ["python", "-c", script])
  assert "exited with status" not in result.stdout, result.stdout
  return result.stdout.strip().splitlines()[-1]


def test_the_image_runs_the_spec_s_entrypoint_command(kubeflow_image):
  assert images.image_command(kubeflow_image) == runner.ENTRYPOINT_COMMAND
  # Without an ExecutorInput the entrypoint (found, imported) refuses with its own error.
  result = images.run(kubeflow_image, runner.ENTRYPOINT_COMMAND)
  assert "--json_serialized_invocation_args (the ExecutorInput) is required" in result.stdout, (
      result.stdout)
  assert "exited with status 1" in result.stdout


def test_the_wheel_and_the_curated_schema_are_installed(kubeflow_image):
  script = ("import glob, importlib.metadata as m, json; "
            "from mnist_tfx.kubeflow import entrypoint; "
            f"print(json.dumps([glob.glob('/opt/wheels/*'), m.version('mnist-edgetpu-tfx'), "
            f"entrypoint.resolve_package_data({runner.schema_uri()!r}), "
            f"open(entrypoint.resolve_package_data({runner.schema_uri()!r})).read()]))")
  wheels, version, schema_path, schema = json.loads(run_python(kubeflow_image, script))
  assert wheels == [WHEEL] and version == "0.1.0"
  assert schema_path == f"{SITE_PACKAGES}/pipeline/schema/schema.pbtxt"
  with open(pipeline_def.SCHEMA_FILE) as f:
    assert schema == f.read()


def test_every_package_setup_py_lists_is_installed_from_the_wheel(kubeflow_image):
  """setup.py's package list, not the Dockerfile, decides what is in the image."""
  packages = setup.PACKAGES + setup.KUBEFLOW_PACKAGES
  script = ("import importlib, json; "
            f"print(json.dumps({{p: importlib.import_module(p).__file__ for p in {packages!r}}}))")
  found = json.loads(run_python(kubeflow_image, script))
  assert "mnist_tfx.kubeflow" in found and "core" in found
  for package, path in found.items():
    assert path == f"{SITE_PACKAGES}/{package.replace('.', '/')}/__init__.py", (package, path)


def test_build_tools_and_the_skipped_compiler_are_absent(kubeflow_image):
  """g++ (pyfarmhash's build; purged with what it pulled in: gcc, binutils) and uv leave no trace;
  built with EDGETPU_COMPILER=skip, the image has no edgetpu_compiler and says so in its label."""
  labels = images.image_config(kubeflow_image)["Labels"]
  assert labels[images.EDGETPU_COMPILER_LABEL] == images.EDGETPU_COMPILER == "skip"
  script = ("import json, shutil; print(json.dumps([shutil.which(t) for t in "
            "('g++', 'gcc', 'cc', 'ld', 'uv', 'edgetpu_compiler', 'python')]))")
  assert json.loads(run_python(kubeflow_image, script)) == [None] * 6 + ["/opt/venv/bin/python"]
