"""Fingerprints of the project's code, so that every cache key follows the code it keys.

A cache key (LocalDagRunner's, and Kubeflow Pipelines': input ids, parameter values, image,
command and arguments) holds a component's parameters and its executor's import path, never the
code behind it: an edited layer, quantizer or blessing rule would be served the old result from
the cache (on Kubeflow, whenever the rebuilt image keeps its tag). (TFX's own `module_file` route
fingerprints the module file it packages.) So the pipeline passes:
- to the Trainer, in its custom_config, `fingerprint()`: every file of the trainer package (tests
  aside) and every project module those files import;
- to each of the project's own components, as the execution parameter `code_fingerprint`
  (`stamp`), the fingerprint of the module defining the component and every project module it
  imports (its executor, driver, constants, core/...).
Imports are followed transitively with `ast`. Third-party modules (TensorFlow, TFX, ...) are
pinned by the lock file and are not part of it. No TensorFlow or TFX import.
"""

import ast
import hashlib
import os
from typing import Any, Iterable, List, Optional, Set

from core import hashing

# The repository root, which holds the project's top-level packages (components/, trainer_module/).
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINER_PACKAGE = "trainer_module"
# The execution parameter `stamp` gives each project component.
EXEC_PROPERTY = "code_fingerprint"
_TEST_SUFFIX = "_test.py"


def _is_code_file(name: str) -> bool:
  return not name.startswith(".") and not name.endswith((_TEST_SUFFIX, ".pyc"))


def _module_file(root: str, dotted: str) -> Optional[str]:
  """The project file defining module `dotted` (a module or a package's __init__.py), or None."""
  base = os.path.join(root, *dotted.split("."))
  for path in (base + ".py", os.path.join(base, "__init__.py")):
    if os.path.isfile(path):
      return path
  return None


def _module_name(root: str, path: str) -> str:
  parts = os.path.relpath(path, root)[:-len(".py")].split(os.sep)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_files(root: str, path: str) -> Set[str]:
  """Project files that importing `path` executes: each imported module and its parent packages."""
  with open(path, "rb") as f:
    tree = ast.parse(f.read(), filename=path)
  module = _module_name(root, path)
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.extend(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # Relative: resolved against this file's package.
        anchor = package.split(".")[:len(package.split(".")) - node.level + 1] if package else []
        base = ".".join(anchor + ([base] if base else []))
      names.append(base)
      names.extend(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
  files = set()
  for name in filter(None, names):
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
      found = _module_file(root, ".".join(parts[:i]))
      if found:
        files.add(found)
  return files


def _closure(root: str, pending: List[str]) -> List[str]:
  """The files `pending` and every project Python file they import, transitively; paths relative
  to `root`, sorted."""
  seen: Set[str] = set()
  while pending:
    path = pending.pop()
    if path in seen:
      continue
    seen.add(path)
    if path.endswith(".py"):
      pending.extend(_imported_files(root, path) - seen)
  return sorted(os.path.relpath(path, root) for path in seen)


def training_code_files(root: str = PROJECT_ROOT, package: str = TRAINER_PACKAGE) -> List[str]:
  """Every file under ROOT/PACKAGE (tests and bytecode aside) and every project Python file they
  import, transitively; paths relative to `root`, sorted."""
  package_dir = os.path.join(root, package)
  pending = []
  for directory, subdirs, names in os.walk(package_dir):
    subdirs[:] = sorted(d for d in subdirs if d != "__pycache__" and not d.startswith("."))
    pending.extend(os.path.join(directory, name) for name in names if _is_code_file(name))
  return _closure(root, pending)


def module_code_files(module: str, root: str = PROJECT_ROOT) -> List[str]:
  """The project file defining `module` (dotted) and every project file it imports, transitively;
  paths relative to `root`, sorted. [] when `module` is not the project's."""
  path = _module_file(root, module)
  return _closure(root, [path]) if path else []


def _digest(root: str, files: Iterable[str]) -> str:
  """SHA-256 (hex) over the relative path and content of every file."""
  digest = hashlib.sha256()
  for relative in files:
    with open(os.path.join(root, relative), "rb") as f:
      content = f.read()
    digest.update(f"{relative}\0{hashing.sha256_bytes(content)}\n".encode())
  return digest.hexdigest()


def fingerprint(root: str = PROJECT_ROOT, package: str = TRAINER_PACKAGE) -> str:
  """SHA-256 (hex) over the relative path and content of every `training_code_files` file."""
  return _digest(root, training_code_files(root, package))


def component_fingerprint(component: Any, root: str = PROJECT_ROOT) -> Optional[str]:
  """SHA-256 (hex) over `module_code_files` of the module defining the component's class; None
  for a component that is not the project's (TFX's own, e.g. ImportSchemaGen or Trainer)."""
  files = module_code_files(type(component).__module__, root)
  return _digest(root, files) if files else None


def stamp(components: Iterable[Any], root: str = PROJECT_ROOT) -> None:
  """Gives each of the project's components the execution parameter EXEC_PROPERTY = its
  `component_fingerprint`, so that its cache key changes with its code. The executors ignore it.
  (TFX's compilers, local and Kubeflow v2, compile every entry of a component's
  `exec_properties` into its parameters.)"""
  for component in components:
    code = component_fingerprint(component, root)
    if code is not None:
      component.exec_properties[EXEC_PROPERTY] = code
