"""A fingerprint of the training code, so that the Trainer's cache follows the code.

The Trainer takes `run_fn` as an import path, so TFX's cache key holds the path and never the code
behind it: an edited layer or quantizer would be served the old model from the cache. (TFX's own
`module_file` route fingerprints the module file it packages.) The pipeline therefore passes this
fingerprint in the Trainer's custom_config: every file of the trainer package (tests aside) and
every project module those files import, followed transitively with `ast`, e.g.
core/contract.py and core/features.py. Third-party modules (TensorFlow, TFX, ...)
are pinned by the lock file and are not part of it. No TensorFlow or TFX import.
"""

import ast
import hashlib
import os
from typing import List, Optional, Set

# The repository root, which holds the project's top-level packages (components/, trainer_module/).
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINER_PACKAGE = "trainer_module"
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


def training_code_files(root: str = PROJECT_ROOT, package: str = TRAINER_PACKAGE) -> List[str]:
  """Every file under ROOT/PACKAGE (tests and bytecode aside) and every project Python file they
  import, transitively; paths relative to `root`, sorted."""
  package_dir = os.path.join(root, package)
  pending = []
  for directory, subdirs, names in os.walk(package_dir):
    subdirs[:] = sorted(d for d in subdirs if d != "__pycache__" and not d.startswith("."))
    pending.extend(os.path.join(directory, name) for name in names if _is_code_file(name))
  seen: Set[str] = set()
  while pending:
    path = pending.pop()
    if path in seen:
      continue
    seen.add(path)
    if path.endswith(".py"):
      pending.extend(_imported_files(root, path) - seen)
  return sorted(os.path.relpath(path, root) for path in seen)


def fingerprint(root: str = PROJECT_ROOT, package: str = TRAINER_PACKAGE) -> str:
  """SHA-256 (hex) over the relative path and content of every `training_code_files` file."""
  digest = hashlib.sha256()
  for relative in training_code_files(root, package):
    with open(os.path.join(root, relative), "rb") as f:
      content = f.read()
    digest.update(f"{relative}\0{hashlib.sha256(content).hexdigest()}\n".encode())
  return digest.hexdigest()
