"""The pushed-version rule: DEST/<N>/, N an integer; the pusher writes versions, serving reads them.

A version's directory name is all ASCII digits (the pusher counts from 1); anything else under DEST
(the pusher's `.incomplete-push-*` directories of pushes in progress, files, other tools' folders)
is never a version. Object stores list directories with a trailing slash, which is ignored. No
TensorFlow import: callers list DEST with the filesystem they use and pass the names here.
"""

from typing import Callable, Iterable, List


def entry_name(entry: str) -> str:
  """A listed directory entry without the trailing slash object stores add."""
  return entry.rstrip("/")


def is_version(entry: str) -> bool:
  """Whether a listed entry names a published version (ASCII digits only)."""
  name = entry_name(entry)
  return name.isascii() and name.isdigit()


def versions(entries: Iterable[str]) -> List[int]:
  """The published versions among listed entries of DEST, ascending."""
  return sorted(int(entry_name(entry)) for entry in entries if is_version(entry))


def list_versions(destination: str, exists: Callable[[str], bool],
                  listdir: Callable[[str], Iterable[str]]) -> List[int]:
  """The published versions under `destination`, ascending; [] when it does not exist. `exists`
  and `listdir` are the caller's filesystem (e.g. tfx.dsl.io.fileio's, for gs:// and s3://)."""
  return versions(listdir(destination)) if exists(destination) else []
