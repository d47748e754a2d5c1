"""The baseline: the newest verified version in the push destination, i.e. what is deployed.

The evaluator compares each candidate with the model devices run today, not with an ML Metadata
query: the same rule holds under every orchestrator (a local run, Vertex AI, open-source Kubeflow
Pipelines, whose backend refuses TFX's Resolver tasks), and a version pushed by another pipeline or
by hand is the baseline too. A version DEST/<N>/ (core/versions.py) is used only when its
model.json parses and checks (core/push_manifest.py), names that version, lists model.tflite, and
model.tflite has the listed sha256 and size; any other version is passed over with a reason, and
the next older one is tried. Every path goes through `tfx.dsl.io.fileio` (local, gs://, s3://).
"""

import dataclasses
import os
from typing import List, Optional, Tuple

from absl import logging
from tfx.dsl.io import fileio

from core import evaluation_metrics
from core import hashing
from core import push_manifest
from core import versions


@dataclasses.dataclass(frozen=True)
class DeployedModel:
  """A verified version: where it is, its manifest and its int8 model's bytes."""
  destination: str
  version: int
  manifest: push_manifest.PushManifest
  tflite_content: bytes

  def describe(self) -> evaluation_metrics.DeployedVersion:
    """What metrics.json records of it."""
    return evaluation_metrics.DeployedVersion(
        destination=self.destination, version=self.version,
        tflite_sha256=hashing.sha256_bytes(self.tflite_content),
        source_model_uri=self.manifest.source_model_uri)


class NotVerified(ValueError):
  """A version that cannot serve as the baseline; the message says why."""


def _read(path: str) -> bytes:
  if not fileio.exists(path):
    raise NotVerified(f"{os.path.basename(path)} is missing")
  with fileio.open(path, "rb") as f:
    return f.read()


def verified(destination: str, version: int) -> DeployedModel:
  """DEST/<version> after checking it.

  Raises:
    NotVerified: model.json missing, invalid or naming another version; model.tflite missing, or
      its sha256 or size not the ones model.json lists.
  """
  version_dir = os.path.join(destination, str(version))
  manifest_path = os.path.join(version_dir, push_manifest.FILE_NAME)
  try:
    manifest = push_manifest.from_json(_read(manifest_path), manifest_path)
  except ValueError as e:  # Includes NotVerified.
    raise NotVerified(str(e)) from None
  if manifest.version != version:
    raise NotVerified(f"its {push_manifest.FILE_NAME} describes version {manifest.version}")
  content = _read(os.path.join(version_dir, push_manifest.MODEL_FILE))
  listed = manifest.files[push_manifest.MODEL_FILE]
  sha256 = hashing.sha256_bytes(content)
  if sha256 != listed.sha256 or len(content) != listed.size_bytes:
    raise NotVerified(f"{push_manifest.MODEL_FILE} has sha256 {sha256} ({len(content)} bytes), "
                      f"{push_manifest.FILE_NAME} lists {listed.sha256} ({listed.size_bytes} "
                      "bytes)")
  return DeployedModel(destination, version, manifest, content)


def newest_verified(destination: str) -> Tuple[Optional[DeployedModel], List[str]]:
  """(the newest version that verifies or None, why each newer version was passed over).

  Each reason reads "version N: WHY" and is logged as a warning.
  """
  passed_over = []
  for version in reversed(versions.list_versions(destination, fileio.exists, fileio.listdir)):
    try:
      return verified(destination, version), passed_over
    except NotVerified as e:
      passed_over.append(f"version {version}: {e}")
      logging.warning("Baseline: passing over %s: %s", os.path.join(destination, str(version)), e)
  return None, passed_over
