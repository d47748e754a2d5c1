"""A stand-in of the cloud object store: moto's S3-compatible server on loopback.

NOT Amazon S3, Google Cloud Storage or MinIO: moto's server (`moto_server`, the `moto[server]`
package) answers the S3 REST API from memory in a process of its own. It proves what the project's
s3:// code sends and reads through real clients (tensorflow-io's AWS SDK for C++, Beam's boto3, the
KFP stand-in's launcher), not a cloud's consistency, permissions or latency.

The session's processes reach it through the standard AWS environment variables (AWS_ENDPOINT_URL
and the credentials), set for the whole session once the store is first used, as a pod's
environment would carry them.
"""

import dataclasses
import os
import socket
import subprocess
import sys
import time
from typing import Dict
import urllib.error
import urllib.request
import uuid

import pytest

REGION = "us-east-1"
ACCESS_KEY_ID = "stand-in-access-key"
SECRET_ACCESS_KEY = "stand-in-secret-key"
START_TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class ObjectStoreStandIn:
  """The running server: its endpoint and the environment that reaches it."""
  endpoint: str

  @property
  def env(self) -> Dict[str, str]:
    """The standard AWS variables for this store (what a pod's environment would carry)."""
    return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY, "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION}

  def client(self):
    """A boto3 S3 client of the store."""
    import boto3
    return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)

  def new_bucket(self, prefix: str = "bucket") -> str:
    """Creates an empty bucket with a name of its own; returns the name."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    self.client().create_bucket(Bucket=name)
    return name

  def keys(self, bucket: str, prefix: str = "") -> Dict[str, int]:
    """{key: size in bytes} of every object under `prefix`."""
    found = {}
    for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                        Prefix=prefix):
      found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return found


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def _wait_until_up(endpoint: str, server: subprocess.Popen) -> None:
  deadline = time.monotonic() + START_TIMEOUT_SECONDS
  while time.monotonic() < deadline:
    if server.poll() is not None:
      raise RuntimeError(f"moto_server exited with {server.returncode}")
    try:
      with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2):
        return
    except (urllib.error.URLError, OSError):
      time.sleep(0.2)
  raise RuntimeError(f"moto_server did not answer at {endpoint} in {START_TIMEOUT_SECONDS} s")


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory):
  """The running stand-in; the session's environment points the AWS clients at it."""
  port = _free_port()
  log = open(tmp_path_factory.mktemp("moto") / "moto_server.log", "wb")
  moto_server = os.path.join(os.path.dirname(sys.executable), "moto_server")
  server = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
  store = ObjectStoreStandIn(f"http://127.0.0.1:{port}")
  try:
    _wait_until_up(store.endpoint, server)
    with pytest.MonkeyPatch.context() as patch:
      for name, value in store.env.items():
        patch.setenv(name, value)
      patch.delenv("S3_ENDPOINT", raising=False)  # AWS_ENDPOINT_URL alone must be enough.
      yield store
  finally:
    server.terminate()
    server.wait(timeout=30)
    log.close()


def upload_dir(store: ObjectStoreStandIn, local_dir: str, uri: str) -> str:
  """Uploads the files of `local_dir` (not recursive) under s3://BUCKET/PREFIX; returns `uri`."""
  bucket, _, prefix = uri[len("s3://"):].partition("/")
  client = store.client()
  for name in sorted(os.listdir(local_dir)):
    client.upload_file(os.path.join(local_dir, name), bucket, f"{prefix}/{name}")
  return uri


@pytest.fixture(scope="session")
def s3_mnist_slice(s3_store, mnist_slice_dir) -> str:
  """`mnist_slice_dir` in a bucket of the stand-in: s3://BUCKET/mnist."""
  return upload_dir(s3_store, mnist_slice_dir, f"s3://{s3_store.new_bucket('data')}/mnist")
