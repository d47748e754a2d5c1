"""The wheel the image installs holds everything the compiled spec runs, and no `kubeflow` package.

kubeflow/Dockerfile installs this wheel; the pods import every executor, the trainer's run_fn and
the entrypoint from it and read the curated schema as its package data.
"""

import json
import os
import subprocess
import sys
import zipfile

import pytest

from tests import kfp_v2_driver

from . import entrypoint
from . import runner

pytestmark = pytest.mark.integration  # Builds the wheel and compiles the pipeline (TFX).

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def spec(tmp_path_factory, s3_mnist_slice):
  output = str(tmp_path_factory.mktemp("spec") / "pipeline.yaml")
  runner.compile_pipeline(output, image="img", pipeline_root=f"{s3_mnist_slice}-root",
                          data_dir=s3_mnist_slice)
  return kfp_v2_driver.read_pipeline_spec(output)


def spec_needs(spec):
  """(modules, package-data URIs) the spec's tasks import or read."""
  modules = {runner.ENTRYPOINT_COMMAND[-1]}  # The command every task runs: `python -m MODULE`.
  data = set()
  for executor in spec["deploymentSpec"]["executors"].values():
    args = executor.get("container", {}).get("args", [])
    if "--executor_class_path" in args:
      modules.add(args[args.index("--executor_class_path") + 1].rsplit(".", 1)[0])
    # Beam's plugins (s3:// for TensorFlow in Beam's workers) are imported by module name.
    modules.update(arg.split("=", 1)[1] for arg in args if arg.startswith("--beam_plugins="))
  for task in spec["root"]["dag"]["tasks"].values():
    for name, parameter in task.get("inputs", {}).get("parameters", {}).items():
      value = parameter.get("runtimeValue", {}).get("constant")
      if name == "run_fn":
        modules.add(value.rsplit(".", 1)[0])
      if isinstance(value, str) and value.startswith(entrypoint.PACKAGE_DATA_SCHEME):
        data.add(value)
  return {m for m in modules if not m.startswith("tfx.")}, data


def test_wheel_holds_every_module_and_data_file_the_spec_needs(spec, project_wheel,
                                                               unpacked_wheel, tmp_path):
  modules, data = spec_needs(spec)
  assert {"trainer_module.run", "components.pusher.executor", "pipeline.s3_filesystem"} <= modules
  assert data == {"python-package://pipeline/schema/schema.pbtxt"}
  with zipfile.ZipFile(project_wheel) as wheel:
    names = set(wheel.namelist())
  for module in modules:
    assert module.replace(".", "/") + ".py" in names, module
  assert "pipeline/schema/schema.pbtxt" in names

  # Imported and resolved as the pods do: from the wheel, working directory outside the checkout.
  script = ("import importlib, json, sys\n"
            "from mnist_tfx.kubeflow import entrypoint\n"
            "found = {m: importlib.import_module(m).__file__ for m in sys.argv[1].split(',')}\n"
            "for uri in sys.argv[2].split(','):\n"
            "  found[uri] = entrypoint.resolve_package_data(uri)\n"
            "print(json.dumps(found))\n")
  env = dict(os.environ, PYTHONPATH=unpacked_wheel, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-c", script, ",".join(sorted(modules)),
                           ",".join(sorted(data))], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=True)
  found = json.loads(result.stdout.strip().splitlines()[-1])
  assert set(found) == modules | data
  for name, path in found.items():
    assert path.startswith(unpacked_wheel + os.sep), (name, path)


def test_wheel_has_no_top_level_kubeflow_package(project_wheel):
  with zipfile.ZipFile(project_wheel) as wheel:
    top_level = {name.split("/")[0] for name in wheel.namelist()}
  assert "kubeflow" not in top_level
  assert "mnist_tfx" in top_level


def test_import_kubeflow_outside_the_checkout_is_not_this_project(tmp_path):
  result = subprocess.run(
      [sys.executable, "-c", "import kubeflow; print(list(getattr(kubeflow, '__path__', [])) or "
       "kubeflow.__file__)"], cwd=tmp_path, capture_output=True, text=True, check=False)
  if result.returncode == 0:  # Another package's `kubeflow` namespace: never ours.
    assert PROJECT_ROOT not in result.stdout
  else:
    assert "No module named 'kubeflow'" in result.stderr
