"""Publishes a set of files as the next integer version under a destination, all or nothing.

DEST/<version>/ appears complete or not at all: the files are written to a hidden temporary
directory inside DEST, read back and checked, and the directory is then renamed to DEST/<version>.
On a POSIX filesystem that rename is atomic and fails when DEST/<version> already holds files, so
two pushes that pick the same number do not clobber each other: the loser takes the next number.
(On object stores such as gs:// a directory rename is a copy of each object, so a reader may
briefly see a version without all of its files; readers there should wait for the manifest.)

Readers list versions with `list_versions`; names that are not all digits (the temporary
directories of pushes in progress or interrupted) are never versions. A push that fails removes its
temporary directory; one killed before it could (SIGKILL, a lost node) leaves it behind, and the
next push removes such leftovers once they are older than `ABANDONED_AFTER_SECONDS`.
"""

import os
import time
from typing import Callable, Collection, Dict, List, Optional, Tuple
import uuid

from absl import logging
from tfx.dsl.io import fileio

from core import hashing
from core import versions

TEMP_PREFIX = ".incomplete-push-"
_MAX_ATTEMPTS = 100
# A push's temporary directory lives from its first write to its rename: seconds locally, minutes
# at worst on an object store. One untouched for a day belongs to a push that was killed.
ABANDONED_AFTER_SECONDS = 24 * 3600


class PushConflictError(RuntimeError):
  """No free version number was found after many attempts."""


def list_versions(destination: str) -> List[int]:
  """The published versions under `destination` (any fileio path), ascending (core.versions)."""
  return versions.list_versions(destination, fileio.exists, fileio.listdir)


def list_incomplete(destination: str) -> List[str]:
  """Temporary directories of pushes that are running or were interrupted before their rename."""
  if not fileio.exists(destination):
    return []
  return sorted(os.path.join(destination, versions.entry_name(entry))
                for entry in fileio.listdir(destination)
                if versions.entry_name(entry).startswith(TEMP_PREFIX))


def identical_latest_version(destination: str, files: Dict[str, bytes],
                             ignored_names: Collection[str] = ()) -> Optional[Tuple[int, str]]:
  """(version, path) of the latest version when it holds exactly `files` (same names, same
  sha256), else None. Names in `ignored_names` (the manifest, logs with timings) are left out of
  the comparison on both sides. Re-publishing the same bytes would only make a duplicate that
  everything following new versions would take for an update."""
  published = list_versions(destination)
  if not published:
    return None
  version_dir = os.path.join(destination, str(published[-1]))
  compared = {name: content for name, content in files.items() if name not in ignored_names}
  names = {versions.entry_name(e) for e in fileio.listdir(version_dir)} - set(ignored_names)
  if names != set(compared):
    return None
  for name, content in compared.items():
    with fileio.open(os.path.join(version_dir, name), "rb") as f:
      if hashing.sha256_bytes(f.read()) != hashing.sha256_bytes(content):
        return None
  return published[-1], version_dir


def _last_modified(path: str) -> Optional[float]:
  """Newest modification time (seconds since the epoch) of `path` and the files directly in it;
  None when the filesystem reports none (object stores have no directory times)."""
  entries = [path] + [os.path.join(path, versions.entry_name(e)) for e in fileio.listdir(path)]
  times = []
  for entry in entries:
    try:
      times.append(fileio.stat(entry).mtime_nsec / 1e9)
    except Exception:  # pylint: disable=broad-except  # Vanished, or no stat on this filesystem.
      continue
  times = [t for t in times if t > 0]
  return max(times) if times else None


def remove_abandoned(destination: str,
                     older_than_seconds: float = ABANDONED_AFTER_SECONDS) -> List[str]:
  """Removes temporary directories of killed pushes not modified for `older_than_seconds`.

  Only `TEMP_PREFIX` directories are considered, never a version. One whose age is unknown is
  kept. Returns the removed paths.
  """
  removed = []
  now = time.time()
  for temp_dir in list_incomplete(destination):
    try:
      modified = _last_modified(temp_dir)
      if modified is None or now - modified < older_than_seconds:
        continue
      fileio.rmtree(temp_dir)
    except Exception as e:  # pylint: disable=broad-except  # Clean-up must never fail a push.
      logging.warning("Could not remove the abandoned push %s: %s", temp_dir, e)
      continue
    logging.info("Removed %s, left by a push killed %.0f hours ago.", temp_dir,
                 (now - modified) / 3600)
    removed.append(temp_dir)
  return removed


def _remove_quietly(temp_dir: str) -> None:
  try:
    if fileio.exists(temp_dir):
      fileio.rmtree(temp_dir)
  except Exception as e:  # pylint: disable=broad-except  # Keep the push's own error.
    logging.warning("Could not remove %s after the failed push: %s", temp_dir, e)


def _write_checked(path: str, content: bytes) -> None:
  with fileio.open(path, "wb") as f:
    f.write(content)
  with fileio.open(path, "rb") as f:
    if hashing.sha256_bytes(f.read()) != hashing.sha256_bytes(content):
      raise OSError(f"{path} does not read back as written")


def publish_version(destination: str, files: Dict[str, bytes],
                    manifest_name: str, manifest: Callable[[int], bytes]) -> Tuple[int, str]:
  """Publishes `files` plus a manifest as DEST/<next version>/; returns (version, its path).

  `manifest(version)` renders the manifest for the version being attempted (it is rewritten when a
  concurrent push takes that number first). Temporary directories abandoned by killed pushes are
  removed first (`remove_abandoned`).

  Raises:
    OSError (or the filesystem's error), PushConflictError: the push failed; its temporary
      directory has been removed and no version was published.
  """
  if manifest_name in files:
    raise ValueError(f"{manifest_name!r} is reserved for the manifest")
  fileio.makedirs(destination)
  remove_abandoned(destination)
  temp_dir = os.path.join(destination, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
  try:
    fileio.makedirs(temp_dir)
    for name, content in files.items():
      _write_checked(os.path.join(temp_dir, name), content)
    for _ in range(_MAX_ATTEMPTS):
      published = list_versions(destination)
      version = published[-1] + 1 if published else 1
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
    raise PushConflictError(
        f"no free version under {destination} after {_MAX_ATTEMPTS} attempts")
  except BaseException:
    _remove_quietly(temp_dir)  # Disk full, permission lost, interrupted: leave no debris.
    raise
