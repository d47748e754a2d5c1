"""Tests of the all-or-nothing versioned publish, with real concurrent processes."""

import json
import os
import shutil
import subprocess
import time

import pytest

from components.pusher import versioned_push
from tests import mnist_slices
from tests import push_processes


def _manifest(version: int) -> bytes:
  return json.dumps({"version": version}).encode()


def test_versions_increase_and_skip_non_numeric_entries(tmp_path):
  destination = str(tmp_path / "dest")
  assert versioned_push.list_versions(destination) == []
  first = versioned_push.publish_version(destination, {"a.bin": b"first"}, "m.json", _manifest)
  os.makedirs(os.path.join(destination, f"{versioned_push.TEMP_PREFIX}leftover"))
  os.makedirs(os.path.join(destination, "notes"))
  second = versioned_push.publish_version(destination, {"a.bin": b"second"}, "m.json", _manifest)
  assert (first[0], second[0]) == (1, 2)
  assert versioned_push.list_versions(destination) == [1, 2]
  assert len(versioned_push.list_incomplete(destination)) == 1
  with open(os.path.join(second[1], "a.bin"), "rb") as f:
    assert f.read() == b"second"
  with open(os.path.join(second[1], "m.json")) as f:
    assert json.load(f) == {"version": 2}


def test_manifest_name_is_reserved(tmp_path):
  with pytest.raises(ValueError, match="reserved"):
    versioned_push.publish_version(str(tmp_path), {"m.json": b"x"}, "m.json", _manifest)
  assert os.listdir(tmp_path) == []


def test_concurrent_pushes_get_distinct_complete_versions(tmp_path):
  destination = str(tmp_path / "dest")
  barrier_dir = tmp_path / "barrier"
  barrier_dir.mkdir()
  model_file = tmp_path / "model.tflite"
  model_file.write_bytes(b"the same model bytes from every writer")
  parties = 2  # Each process imports TensorFlow (fileio's plugin): keep the count small.
  processes = [push_processes.push_process(destination, str(model_file), "barrier",
                                           str(barrier_dir), str(parties))
               for _ in range(parties)]
  results = []
  for process in processes:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    results.append(json.loads(output.strip().splitlines()[-1]))
  assert sorted(result["version"] for result in results) == [1, 2]
  # Both writers chose version 1 before either renamed, so one rename collided and was retried.
  assert sorted(result["rename_calls"] for result in results) == [1, 2]
  assert versioned_push.list_versions(destination) == [1, 2]
  assert versioned_push.list_incomplete(destination) == []
  writers = set()
  for version in (1, 2):
    version_dir = os.path.join(destination, str(version))
    assert sorted(os.listdir(version_dir)) == ["model.json", "model.tflite", "writer.txt"]
    with open(os.path.join(version_dir, "model.json")) as f:
      manifest = json.load(f)
    with open(os.path.join(version_dir, "writer.txt")) as f:
      writer = int(f.read())
    assert manifest == {"version": version, "pid": writer}  # Files and manifest from one writer.
    writers.add(writer)
  assert writers == {process.pid for process in processes}


def _old(path: str, seconds: float) -> None:
  """Sets the modification time of `path` and the files in it `seconds` into the past."""
  stamp = time.time() - seconds
  for entry in [path] + [os.path.join(path, name) for name in os.listdir(path)]:
    os.utime(entry, (stamp, stamp))


def test_later_push_removes_temporaries_abandoned_long_ago_and_nothing_else(tmp_path):
  destination = str(tmp_path / "dest")
  versioned_push.publish_version(destination, {"a.bin": b"first"}, "m.json", _manifest)
  abandoned = os.path.join(destination, f"{versioned_push.TEMP_PREFIX}killed")
  running = os.path.join(destination, f"{versioned_push.TEMP_PREFIX}running")
  for temp_dir in (abandoned, running):
    os.makedirs(temp_dir)
    with open(os.path.join(temp_dir, "a.bin"), "wb") as f:
      f.write(b"partial")
  _old(abandoned, versioned_push.ABANDONED_AFTER_SECONDS + 60)
  _old(running, versioned_push.ABANDONED_AFTER_SECONDS - 600)  # Recently written: maybe alive.
  _old(os.path.join(destination, "1"), 10 * versioned_push.ABANDONED_AFTER_SECONDS)  # A version.
  os.makedirs(os.path.join(destination, "notes"))

  versioned_push.publish_version(destination, {"a.bin": b"second"}, "m.json", _manifest)

  assert versioned_push.list_incomplete(destination) == [running]
  assert versioned_push.list_versions(destination) == [1, 2]
  with open(os.path.join(destination, "1", "a.bin"), "rb") as f:
    assert f.read() == b"first"
  assert sorted(os.listdir(destination)) == sorted(
      ["1", "2", f"{versioned_push.TEMP_PREFIX}running", "notes"])


def test_an_old_directory_with_a_fresh_file_is_kept(tmp_path):
  """A slow push into an old directory name is still alive: the newest file time decides."""
  destination = str(tmp_path / "dest")
  temp_dir = os.path.join(destination, f"{versioned_push.TEMP_PREFIX}slow")
  os.makedirs(temp_dir)
  _old(temp_dir, 2 * versioned_push.ABANDONED_AFTER_SECONDS)
  with open(os.path.join(temp_dir, "model.tflite"), "wb") as f:
    f.write(b"being written")
  assert versioned_push.remove_abandoned(destination) == []
  assert versioned_push.list_incomplete(destination) == [temp_dir]


@pytest.fixture
def small_filesystem(tmp_path):
  """A 1 MiB tmpfs mounted for the test (needs root and mount rights; skipped without them)."""
  mount_point = tmp_path / "small_fs"
  mount_point.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                           capture_output=True, text=True, check=False)
  if mounted.returncode != 0:
    pytest.skip(f"cannot mount a 1 MiB tmpfs to fill (needs root and CAP_SYS_ADMIN): "
                f"{mounted.stderr.strip()}")
  try:
    yield str(mount_point)
  finally:
    subprocess.run(["umount", str(mount_point)], check=True)


def test_push_that_fills_the_disk_removes_its_temporary_directory(small_filesystem):
  destination = os.path.join(small_filesystem, "pushed_models")
  with open(mnist_slices.FULL_MNIST_DIR / "t10k-images-idx3-ubyte.gz", "rb") as f:
    too_big = f.read()  # 1.6 MB: more than the 1 MiB filesystem holds.
  small = b"a small model"
  versioned_push.publish_version(destination, {"model.tflite": small}, "m.json", _manifest)

  with pytest.raises(Exception) as raised:
    versioned_push.publish_version(destination, {"model.tflite": too_big}, "m.json", _manifest)

  assert "space" in str(raised.value).lower() or "ENOSPC" in repr(raised.value)
  assert versioned_push.list_incomplete(destination) == []  # No debris...
  assert versioned_push.list_versions(destination) == [1]  # ...and the old version untouched.
  with open(os.path.join(destination, "1", "model.tflite"), "rb") as f:
    assert f.read() == small
  assert shutil.disk_usage(small_filesystem).used < 64 * 1024  # The space came back.
  # The next push fits again.
  assert versioned_push.publish_version(destination, {"model.tflite": b"v2"}, "m.json",
                                        _manifest)[0] == 2


def test_identical_latest_version_compares_names_and_sha256_of_the_latest_only(tmp_path):
  destination = str(tmp_path / "dest")
  files = {"model.tflite": b"model v1", "log.txt": b"compiled in 12 ms"}
  assert versioned_push.identical_latest_version(destination, files) is None
  versioned_push.publish_version(destination, files, "m.json", _manifest)
  version_1 = (1, os.path.join(destination, "1"))

  assert versioned_push.identical_latest_version(destination, files, ["m.json"]) == version_1
  assert versioned_push.identical_latest_version(destination, files) is None  # m.json compared.
  changed = {**files, "model.tflite": b"model v2"}
  assert versioned_push.identical_latest_version(destination, changed, ["m.json"]) is None
  fewer = {"model.tflite": b"model v1"}
  assert versioned_push.identical_latest_version(destination, fewer, ["m.json"]) is None
  assert versioned_push.identical_latest_version(destination, fewer,
                                                 ["m.json", "log.txt"]) == version_1
  relogged = {**files, "log.txt": b"compiled in 15 ms"}
  assert versioned_push.identical_latest_version(destination, relogged,
                                                 ["m.json", "log.txt"]) == version_1
  versioned_push.publish_version(destination, changed, "m.json", _manifest)
  # Version 1 holds the files, but the latest (2) does not: publishing them again is a rollback.
  assert versioned_push.identical_latest_version(destination, files, ["m.json"]) is None
