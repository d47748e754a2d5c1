"""Builds the project's two images and runs them in tests, with buildah (no container engine).

Builds go through `scripts/build_images.sh`, the script behind `make images`, with ENGINE=buildah,
on the STAND-IN of python:3.10-slim (`localhost/python-standin:3.10-slim`, tests/python_standin.sh:
not the official image; no registry needs to be reachable), with this machine's CA bundle as the
build secret `ca-bundle` (what a user behind a TLS-intercepting proxy passes), and the Kubeflow
image with EDGETPU_COMPILER=skip (Coral's apt repository may be unreachable; the pusher then pushes
the CPU model).

buildah runs images as the docker commands of the README would, with these differences:
- `--isolation chroot`: works without cgroup delegation (the default OCI runtime does not start
  containers in CI sandboxes); the container shares the host's network, so `-p 8501:8501` has no
  equivalent and a server in the image listens on a port of the host (tests pass `--port`).
- `buildah run` does not apply ENTRYPOINT/CMD: `image_command` reads them from the image so a test
  runs the image's own command. USER, WORKDIR and ENV are applied.
- SIGTERM to `buildah run` SIGKILLs the command: `Container.stop` signals the command itself
  (the grandchild of buildah's chroot helper) for a graceful stop.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from typing import BinaryIO, Dict, Iterator, List, Optional, Sequence

from tests import kfp_v2_driver
from tests import mnist_slices

ROOT = str(mnist_slices.REPO_ROOT)
BUILD_SCRIPT = os.path.join(ROOT, "scripts", "build_images.sh")
STANDIN_SCRIPT = os.path.join(ROOT, "tests", "python_standin.sh")
STANDIN_IMAGE = "localhost/python-standin:3.10-slim"
# What the tests build: scripts/build_images.sh's image names, in buildah's local storage.
REPOSITORIES = {"serving": "localhost/mnist-edgetpu-serving",
                "kubeflow": "localhost/mnist-edgetpu-tfx"}
CACHE_DIR = os.environ.get("PY_STANDIN_CACHE", os.path.expanduser("~/.cache/python-standin"))
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
ISOLATION = ("--isolation", "chroot")
# The Kubeflow image without Coral's compiler (build argument EDGETPU_COMPILER, label below).
EDGETPU_COMPILER = "skip"
EDGETPU_COMPILER_LABEL = "io.github.mnist-edgetpu.edgetpu-compiler"
# Depth of the command under `buildah run`: buildah-chroot-runtime, buildah-chroot-exec, command.
COMMAND_DEPTH = 3


class ImageError(RuntimeError):
  """buildah, the stand-in script or the build script failed (the message holds the log's tail)."""


def buildah_problem() -> Optional[str]:
  """Why images cannot be built and run on this machine, or None when they can."""
  if shutil.which("buildah") is None or shutil.which("debootstrap") is None:
    return ("buildah and debootstrap are not installed (`make test` installs them: "
            "apt-get install buildah debootstrap)")
  if os.geteuid() != 0:
    return "the image tests need root (rootful buildah storage, chroot isolation, debootstrap)"
  return None


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess:
  result = subprocess.run(["buildah", *args], capture_output=True, text=True, check=False)
  if check and result.returncode != 0:
    raise ImageError(f"buildah {' '.join(args)} exited {result.returncode}:\n"
                     f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
  return result


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
  """One build of `name` at a time on this machine (xdist workers, other checkouts' sessions)."""
  os.makedirs(CACHE_DIR, exist_ok=True)
  with open(os.path.join(CACHE_DIR, f"{name}.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def image_id(reference: str) -> Optional[str]:
  result = buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", reference,
                   check=False)
  return result.stdout.strip() if result.returncode == 0 else None


def _logged(command: Sequence[str], log_path: str, env: Dict[str, str]) -> str:
  """Runs `command` with stderr to `log_path`; returns its stdout. Raises ImageError."""
  with open(log_path, "w") as log:
    result = subprocess.run(list(command), stdout=subprocess.PIPE, stderr=log, text=True,
                            env=env, check=False)
  if result.returncode != 0:
    with open(log_path, errors="replace") as f:
      raise ImageError(f"{' '.join(command)} exited {result.returncode} (log {log_path}):\n"
                       f"{f.read()[-6000:]}")
  return result.stdout


def ensure_standin(log_path: str) -> str:
  """The stand-in's image ID: built once per machine (~/.cache/python-standin keeps its .debs and
  an archive of the image, reloaded in seconds when the image was removed)."""
  with machine_lock("standin"):
    _logged([STANDIN_SCRIPT], log_path, dict(os.environ))
  return image_id(STANDIN_IMAGE)


def checkout_tag() -> str:
  """A tag of this checkout's own (sessions of other checkouts on the machine keep theirs)."""
  return "test-" + hashlib.sha256(ROOT.encode()).hexdigest()[:10]


def build(image: str, log_path: str) -> str:
  """Builds `image` (serving or kubeflow) with `make images`' script; returns its image ID.

  buildah's layer cache (intermediate images, kept between sessions) makes an unchanged rebuild
  take seconds. The image the tag named before is removed when the build replaced it and no
  container uses it; its cached layers stay.
  """
  reference = f"{REPOSITORIES[image]}:{checkout_tag()}"
  env = dict(os.environ, ENGINE="buildah", TAG=checkout_tag(), BASE_IMAGE=STANDIN_IMAGE,
             EDGETPU_COMPILER=EDGETPU_COMPILER, CA_BUNDLE=HOST_CA_BUNDLE, BUILD_FLAGS="",
             **{f"{name.upper()}_IMAGE": repository for name, repository in REPOSITORIES.items()})
  with machine_lock(f"{image}-image"):
    previous = image_id(reference)
    (line,) = _logged([BUILD_SCRIPT, image], log_path, env).splitlines()
    built = image_id(reference)
    if line.split() != [reference, built]:
      raise ImageError(f"{BUILD_SCRIPT} reported {line!r}; {reference} is {built}")
    if previous and previous != built:
      buildah("rmi", previous, check=False)  # Refused (and kept) while a container uses it.
  return built


def image_config(image: str) -> Dict:
  """The OCI config (Env, Entrypoint, Cmd, User, WorkingDir, Labels, ExposedPorts)."""
  # buildah 1.28's --format has no `json` function: the whole inspect output is parsed.
  return json.loads(buildah("inspect", "--type", "image", image).stdout)["OCIv1"]["config"]


def image_command(image: str) -> List[str]:
  """ENTRYPOINT + CMD: what `docker run IMAGE` runs (buildah run does not apply them)."""
  config = image_config(image)
  return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


@dataclasses.dataclass(frozen=True)
class RunOptions:
  """How a command runs in a working container of an image.

  volumes: {host path: "container path[:ro]"} (docker run's -v).
  env: extra environment variables (docker run's -e); the image's ENV applies.
  """
  volumes: Dict[str, str] = dataclasses.field(default_factory=dict)
  env: Dict[str, str] = dataclasses.field(default_factory=dict)
  user: Optional[str] = None
  workdir: Optional[str] = None

  def flags(self) -> List[str]:
    flags = [*ISOLATION]
    for host, target in self.volumes.items():
      flags += ["-v", f"{host}:{target}"]
    for key, value in self.env.items():
      flags += ["--env", f"{key}={value}"]
    if self.user:
      flags += ["--user", self.user]
    if self.workdir:
      flags += ["--workingdir", self.workdir]
    return flags


def _new_container(image: str) -> str:
  return buildah("from", "--pull=never", image).stdout.strip().splitlines()[-1]


def run(image: str, argv: Sequence[str], options: RunOptions = RunOptions(),
        timeout: float = 600) -> subprocess.CompletedProcess:
  """`argv` in a fresh working container of `image`, removed afterwards; output in .stdout (with
  buildah's own "subprocess exited with status N" line when the command failed)."""
  container = _new_container(image)
  try:
    return subprocess.run(["buildah", "run", *options.flags(), container, "--", *argv],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, check=False)
  finally:
    buildah("rm", container, check=False)


class TaskLauncher:
  """A tests/kfp_v2_driver.py TaskLauncher: every task's command in a fresh working container of
  `image`, as a pod of the image. From this machine it gets the task's scratch directory (its
  container filesystem: the output file, HOME, TMPDIR, the launcher's downloads), mounted at the
  same path and its working directory, and the task's environment (the store's address and
  credentials among it); PATH and the rest are the image's own."""

  def __init__(self, image: str):
    self.image = image

  def __call__(self, command: kfp_v2_driver.TaskCommand, log: BinaryIO) -> int:
    options = RunOptions(volumes={command.scratch_dir: command.scratch_dir}, env=command.env,
                         workdir=command.scratch_dir)
    container = _new_container(self.image)
    try:
      return subprocess.run(["buildah", "run", *options.flags(), container, "--", *command.argv],
                            stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    finally:
      buildah("rm", container, check=False)


def _children(pid: int) -> List[int]:
  """Child processes of `pid`, from every /proc/*/stat (buildah is a Go program: it forks from any
  thread, and /proc/PID/task/PID/children lists one thread's children only)."""
  children = []
  for entry in os.listdir("/proc"):
    if not entry.isdigit():
      continue
    with contextlib.suppress(OSError):
      with open(f"/proc/{entry}/stat") as f:
        stat = f.read()
      if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # ppid, after "(comm)" (may hold spaces)
        children.append(int(entry))
  return sorted(children)


class Container:
  """A long-lived command (a server) in a working container of an image, e.g.

    with images.Container(image, argv, RunOptions(volumes=...), log_path) as server:
      ...  # talk to it on 127.0.0.1 (the host's network)
  """

  def __init__(self, image: str, argv: Sequence[str], options: RunOptions, log_path: str):
    self.image, self.argv, self.options, self.log_path = image, list(argv), options, log_path
    self.container: Optional[str] = None
    self.process: Optional[subprocess.Popen] = None

  def start(self) -> "Container":
    self.container = _new_container(self.image)
    with open(self.log_path, "wb") as log:
      self.process = subprocess.Popen(
          ["buildah", "run", *self.options.flags(), self.container, "--", *self.argv],
          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return self

  def log(self) -> str:
    with open(self.log_path, errors="replace") as f:
      return f.read()

  def command_pid(self, timeout: float = 10) -> Optional[int]:
    """The pid of the command itself (buildah run → chroot runtime → chroot exec → command)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and self.process.poll() is None:
      pid = self.process.pid
      for _ in range(COMMAND_DEPTH):
        children = _children(pid)
        if not children:
          break
        pid = children[0]
      else:
        return pid
      time.sleep(0.1)
    return None

  def stop(self, timeout: float = 15) -> Optional[int]:
    """SIGTERM to the command (a graceful stop), else to buildah, else SIGKILL; removes the
    working container. Returns buildah run's exit code."""
    if self.process is not None and self.process.poll() is None:
      command = self.command_pid(timeout=1)
      for pid in ([command] if command else []) + [self.process.pid]:
        with contextlib.suppress(ProcessLookupError):
          os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
          self.process.wait(timeout=timeout)
          break
      if self.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
          os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
    if self.container:
      buildah("rm", self.container, check=False)
      self.container = None
    return self.process.returncode if self.process else None

  def __enter__(self) -> "Container":
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()
