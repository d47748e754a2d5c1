"""Publishes a set of files as the next integer version under a destination, all or nothing.

DEST/<version>/ appears complete or not at all: the files are written to a hidden temporary
directory inside DEST, read back and checked, and the directory is then renamed to DEST/<version>.
On a POSIX filesystem that rename is atomic and fails when DEST/<version> already holds files, so
two pushes that pick the same number do not clobber each other: the loser takes the next number.
(On object stores such as gs:// a directory rename is a copy of each object, so a reader may
briefly see a version without all of its files; readers there should wait for the manifest.)

Readers list versions with `list_versions`; names that are not all digits (the temporary
directories of pushes in progress or interrupted) are never versions.
"""

import hashlib
import os
from typing import Callable, Dict, List, Tuple
import uuid

from absl import logging
from tfx.dsl.io import fileio

TEMP_PREFIX = ".incomplete-push-"
_MAX_ATTEMPTS = 100


class PushConflictError(RuntimeError):
  """No free version number was found after many attempts."""


def sha256_hex(content: bytes) -> str:
  return hashlib.sha256(content).hexdigest()


def _entry_name(entry: str) -> str:
  return entry.rstrip("/")  # Object stores list directories with a trailing slash.


def list_versions(destination: str) -> List[int]:
  """The published versions under `destination`, ascending."""
  if not fileio.exists(destination):
    return []
  names = (_entry_name(entry) for entry in fileio.listdir(destination))
  return sorted(int(name) for name in names if name.isdigit())


def list_incomplete(destination: str) -> List[str]:
  """Temporary directories of pushes that are running or were interrupted before their rename."""
  if not fileio.exists(destination):
    return []
  return sorted(os.path.join(destination, _entry_name(entry))
                for entry in fileio.listdir(destination)
                if _entry_name(entry).startswith(TEMP_PREFIX))


def _write_checked(path: str, content: bytes) -> None:
  with fileio.open(path, "wb") as f:
    f.write(content)
  with fileio.open(path, "rb") as f:
    if sha256_hex(f.read()) != sha256_hex(content):
      raise OSError(f"{path} does not read back as written")


def publish_version(destination: str, files: Dict[str, bytes],
                    manifest_name: str, manifest: Callable[[int], bytes]) -> Tuple[int, str]:
  """Publishes `files` plus a manifest as DEST/<next version>/; returns (version, its path).

  `manifest(version)` renders the manifest for the version being attempted (it is rewritten when a
  concurrent push takes that number first).
  """
  if manifest_name in files:
    raise ValueError(f"{manifest_name!r} is reserved for the manifest")
  fileio.makedirs(destination)
  temp_dir = os.path.join(destination, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
  fileio.makedirs(temp_dir)
  for name, content in files.items():
    _write_checked(os.path.join(temp_dir, name), content)
  for _ in range(_MAX_ATTEMPTS):
    versions = list_versions(destination)
    version = versions[-1] + 1 if versions else 1
    _write_checked(os.path.join(temp_dir, manifest_name), manifest(version))
    target = os.path.join(destination, str(version))
    try:
      fileio.rename(temp_dir, target, overwrite=False)
    except Exception:  # The filesystem plugins raise different types for "target exists".
      if fileio.exists(target):
        logging.info("Version %d under %s was taken by a concurrent push; trying the next.",
                     version, destination)
        continue
      raise
    return version, target
  raise PushConflictError(f"no free version under {destination} after {_MAX_ATTEMPTS} attempts; "
                          f"the files stay in {temp_dir}")
