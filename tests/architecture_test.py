"""The project's seams beyond the layer contracts of .importlinter (`make lint` checks those).

Which modules must stay free of TensorFlow, that no component reaches into another's executor, and
that no function outside the tests is longer than a person reads at once.
"""

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
    "core.contract", "core.errors", "core.config_values", "core.int8_runtime", "core.hashing",
    "core.evaluation_metrics", "core.push_manifest", "core.versions", "core.paths",
    "core.latency", "core.payload", "core.machine", "core.tflite_graph",
    "components.evaluator.blessing", "components.evaluator.metrics",
    "components.evaluator.constants", "components.pusher.constants",
    "components.mnist_example_gen.constants", "components.statistics_gen.constants",
    "components.anomalies_gate.constants", "pipeline.configs", "pipeline.options",
    "mnist_tfx.cli", "mnist_tfx.compare.cli", "serving.cli",
]
# A function's body (its docstring aside) longer than this is split into named pieces.
MAX_FUNCTION_LINES = 80
SOURCE_PACKAGES = ("core", "components", "trainer_module", "pipeline", "serving", "mnist_tfx",
                   "kubeflow", "benchmarks")


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


@pytest.mark.parametrize("module", TF_FREE_MODULES)
def test_light_modules_do_not_import_tensorflow(module):
  script = (f"import sys, {module}; "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'apache_beam', 'tfx')); "
            "assert not heavy, heavy[:5]")
  subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)


def _function_lengths(path: pathlib.Path):
  """(name, first line, lines) of every function in a file, its docstring not counted."""
  tree = ast.parse(path.read_text(), str(path))
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      body = node.body
      if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
          and isinstance(body[0].value.value, str)):
        body = body[1:] or body
      first = min([node.lineno] + [d.lineno for d in node.decorator_list])
      docstring_lines = body[0].lineno - node.body[0].lineno if body is not node.body else 0
      yield node.name, node.lineno, node.end_lineno - first + 1 - docstring_lines


def test_no_function_outside_the_tests_is_longer_than_80_lines():
  too_long = [f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
              for path in _sources(*SOURCE_PACKAGES) if not path.name.endswith("_test.py")
              for name, line, length in _function_lengths(path) if length > MAX_FUNCTION_LINES]
  assert not too_long, too_long
