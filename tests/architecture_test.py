"""The project's seams: who may import whom, and which modules must stay free of TensorFlow."""

import ast
import pathlib
import subprocess
import sys

import pytest

from tests import mnist_slices

ROOT = mnist_slices.REPO_ROOT
# Modules that readers without TensorFlow (serving, `mnist-tfx --help`, the IDX reader's users)
# import: importing them must not import TensorFlow.
TF_FREE_MODULES = [
    "components.contract", "components.errors", "components.config_values",
    "components.int8_runtime", "components.evaluator.blessing", "components.evaluator.metrics",
    "components.evaluator.constants", "components.pusher.constants",
    "components.mnist_example_gen.constants", "components.statistics_gen.constants",
    "components.anomalies_gate.constants", "pipeline.configs", "mnist_tfx.options",
    "mnist_tfx.cli",
]


def _imports(path: pathlib.Path):
  """The absolute module names a file imports (`from a import b` gives a and a.b)."""
  tree = ast.parse(path.read_text(), str(path))
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      yield node.module
      yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _sources(*packages: str):
  for package in packages:
    yield from sorted((ROOT / package).rglob("*.py"))


def test_no_component_imports_another_components_executor():
  """Contracts live in constants.py modules. (Tests may drive another executor to make real
  inputs, e.g. the pusher's tests run the evaluator to get a real blessing.)"""
  for path in _sources("components"):
    if path.name.endswith("_test.py"):
      continue
    parts = path.relative_to(ROOT).parts
    own = parts[1] if len(parts) > 2 else None
    for name in _imports(path):
      pieces = name.split(".")
      if len(pieces) >= 3 and pieces[0] == "components" and pieces[2] == "executor":
        assert pieces[1] == own, f"{path} imports {name}"


@pytest.mark.parametrize("package", ["components", "pipeline", "trainer_module"])
def test_the_pipeline_never_depends_on_its_runners(package):
  """(Tests may drive the command line, e.g. from --train-config text to the trainer.)"""
  for path in _sources(package):
    if path.name.endswith("_test.py"):
      continue
    for name in _imports(path):
      assert not name.startswith(("mnist_tfx", "kubeflow")), f"{path} imports {name}"


@pytest.mark.parametrize("module", TF_FREE_MODULES)
def test_light_modules_do_not_import_tensorflow(module):
  script = (f"import sys, {module}; "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'apache_beam', 'tfx')); "
            "assert not heavy, heavy[:5]")
  subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
