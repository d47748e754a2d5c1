"""Serving fixtures: a REAL pushed version of the slice-trained model, and helpers to serve it.

`pushed_version` runs the EdgeTpuPusher executor (no edgetpu_compiler on PATH, so it pushes the CPU
int8 model, as on this machine) on the trained slice model with a blessing for its int8 bytes, and
returns DEST/1. Tests that add versions copy it into a destination of their own
(`copy_destination`). `start_server` runs `python -m serving serve` on loopback in a subprocess.
"""

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import List, Optional, Sequence

import httpx
import pytest

from core import hashing
from core import push_manifest
from tests import mnist_slices

REPO_ROOT = str(mnist_slices.REPO_ROOT)


@dataclasses.dataclass(frozen=True)
class PushedVersion:
  destination: str  # DEST, holding only version 1
  version_dir: str  # DEST/1
  model_content: bytes  # DEST/1/model.tflite
  manifest: dict


@pytest.fixture(scope="session")
def pushed_version(trained_model_dir, tmp_path_factory) -> PushedVersion:
  """DEST/1 as the real EdgeTpuPusher publishes it for the slice-trained model."""
  from tests import pusher_runs
  version_dir = pusher_runs.push_slice_model(tmp_path_factory.mktemp("pushed"), trained_model_dir)
  destination = os.path.dirname(version_dir)
  with open(os.path.join(version_dir, push_manifest.MODEL_FILE), "rb") as f:
    model_content = f.read()
  with open(os.path.join(version_dir, push_manifest.FILE_NAME)) as f:
    manifest = json.load(f)
  return PushedVersion(destination, version_dir, model_content, manifest)


def copy_destination(pushed: PushedVersion, destination: str) -> str:
  """A destination of one's own holding a copy of version 1."""
  shutil.copytree(pushed.version_dir, os.path.join(destination, "1"))
  return destination


def publish(pushed: PushedVersion, destination: str, files: dict, manifest_of=None) -> int:
  """Publishes `files` as the next version with the pusher's own atomic publish
  (components/pusher/versioned_push), with version 1's manifest listing each file's sha256."""
  from components.pusher import versioned_push

  def manifest(version: int) -> bytes:
    listed = {name: {"sha256": hashing.sha256_bytes(content), "size_bytes": len(content)}
              for name, content in files.items()}
    return json.dumps({**pushed.manifest, "version": version,
                       "files": manifest_of(listed) if manifest_of else listed}).encode()
  version, _ = versioned_push.publish_version(destination, files, push_manifest.FILE_NAME,
                                              manifest)
  return version


def corrupted(listed: dict) -> dict:
  """The manifest of a version whose model.tflite is not the file it lists (bad sha256)."""
  listed[push_manifest.MODEL_FILE]["sha256"] = "0" * 64
  return listed


def wait_for(condition, timeout: float = 30) -> None:
  deadline = time.monotonic() + timeout
  while not condition():
    assert time.monotonic() < deadline, "timed out"
    time.sleep(0.1)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@dataclasses.dataclass
class Server:
  process: subprocess.Popen
  url: str
  log_path: str

  def log(self) -> str:
    with open(self.log_path) as f:
      return f.read()

  def stop(self) -> None:
    if self.process.poll() is None:
      self.process.terminate()
      try:
        self.process.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()


def start_server(destination: str, log_path: str, extra_args: Optional[List[str]] = None,
                 ready: bool = True, timeout: float = 60, python: str = sys.executable,
                 source_root: str = REPO_ROOT, env: Optional[dict] = None,
                 pythonpath: Sequence[str] = (), args: Optional[List[str]] = None,
                 port: Optional[int] = None, new_session: bool = False) -> Server:
  """Starts `python -m serving serve` on a free loopback port; waits for /healthz (or /readyz).

  `python` and `source_root` (its working directory and PYTHONPATH) default to this interpreter
  and the checkout; `env` replaces the inherited environment when given; `pythonpath` goes on
  PYTHONPATH before the source root. `args` replaces the whole command line after
  `python -m serving` (listening on 127.0.0.1:`port`). `new_session`: the server leads a process
  group of its own, which a test can signal as a terminal's Ctrl-C does (os.killpg).
  """
  port = port or free_port()
  env = dict(os.environ if env is None else env,
             PYTHONPATH=os.pathsep.join([*pythonpath, source_root]))
  if args is None:
    args = ["serve", "--push-destination", destination, "--port", str(port), *(extra_args or [])]
  log = open(log_path, "w")
  process = subprocess.Popen([python, "-m", "serving", *args], stdout=log,
                             stderr=subprocess.STDOUT, env=env, cwd=source_root,
                             start_new_session=new_session)
  log.close()
  server = Server(process, f"http://127.0.0.1:{port}", log_path)
  deadline = time.monotonic() + timeout
  probe = "/readyz" if ready else "/healthz"
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log()}")
    try:
      if httpx.get(server.url + probe, timeout=2).status_code == 200:
        return server
    except httpx.TransportError:
      pass
    time.sleep(0.2)
  server.stop()
  raise RuntimeError(f"the server did not answer {probe} in {timeout} s:\n{server.log()}")


@pytest.fixture(scope="module")
def serving_server(pushed_version, tmp_path_factory):
  """`python -m serving serve` on loopback over pushed_version's destination, one per module."""
  server = start_server(pushed_version.destination,
                        str(tmp_path_factory.mktemp("server") / "server.log"))
  yield server
  server.stop()
