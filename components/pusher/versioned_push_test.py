"""Tests of the all-or-nothing versioned publish, with real concurrent processes."""

import json
import os

import pytest

from components.pusher import versioned_push
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
