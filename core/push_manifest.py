"""A pushed version DEST/<N>/: its file names and model.json, the manifest that describes it.

EdgeTpuPusher writes a version (components/pusher/versioned_push.py publishes it atomically);
serving, `mnist-tfx predict`, the run summary and the run report read it. The manifest lists every
other file with its SHA-256 and size (a reader serves a version only when each file matches), the
int8 model's input and output tensors with their quantization (real = scale * (q - zero_point)),
the labels by output index (also in LABELS_FILE, for Coral's tools), the evaluation that blessed it
(metrics.json as written), the Edge TPU compatibility predicted from the flatbuffer and what
edgetpu_compiler did, with the Edge TPU runtime version the compiled model needs. pydantic checks
every field. No TensorFlow import: serving's image reads it.
"""

import datetime
import re
from typing import ClassVar, Dict, List, Optional, Sequence

import pydantic

from core import evaluation_metrics
from core import payload

MODEL_FILE = "model.tflite"  # The full-int8 model: runs on a CPU, the compiler's input.
EDGETPU_MODEL_FILE = "model_edgetpu.tflite"  # edgetpu_compiler's output, when it ran.
COMPILER_LOG_FILE = "edgetpu_compiler.log"  # Its console output and operation table.
# The labels as Coral ships them beside a model: one per line, line i naming output i, read by
# pycoral.utils.dataset.read_label_file and libcoral's ReadLabelFile (labels_file_content).
LABELS_FILE = "labels.txt"
FILE_NAME = "model.json"  # This manifest.
# What those readers would split into "ID LABEL" (whitespace or ':') or drop.
_UNSAFE_LABEL = re.compile(r"[\s:]|^$")


def labels_file_content(labels: Sequence[str]) -> bytes:
  """LABELS_FILE's bytes: UTF-8, one label per line in output order, each line ending in '\n'.

  Raises:
    ValueError: a label that Coral's readers would not read back as itself (empty, or holding
      whitespace or ':', which they take for an "ID LABEL" separator).
  """
  for label in labels:
    if _UNSAFE_LABEL.search(label):
      raise ValueError(f"label {label!r} cannot be written to {LABELS_FILE}: pycoral's "
                       "read_label_file would not read it back (no whitespace, ':' or empty "
                       "labels)")
  return "".join(f"{label}\n" for label in labels).encode("utf-8")


class FileEntry(payload.Schema):
  sha256: evaluation_metrics.Sha256
  size_bytes: pydantic.NonNegativeInt


class TensorInfo(payload.Schema):
  """A model input or output as the flatbuffer declares it."""
  name: str
  shape: List[int]  # -1 for a dynamic dimension.
  dtype: str  # numpy's name: "int8", "uint8", "float32", ...
  scale: Optional[float]  # None for a tensor without quantization.
  zero_point: Optional[int]


class OperatorCheck(payload.Schema):
  """One operator of the compatibility check, in execution order."""
  index: pydantic.NonNegativeInt
  name: str
  version: int
  status: str  # components/pusher/edgetpu_compatibility.py's statuses, e.g. "Mapped to Edge TPU".


class EdgeTpuCompatibility(payload.Schema):
  """What the Edge TPU compiler would map, predicted from the flatbuffer alone."""
  source: str
  rules: str  # Where the rules come from (Coral's documentation).
  fully_mapped: bool
  operations_total: pydantic.NonNegativeInt
  operations_on_edgetpu: pydantic.NonNegativeInt
  operations_on_cpu: pydantic.NonNegativeInt
  model_problems: List[str]
  summary: str
  operators: List[OperatorCheck]


class CompilerOperator(payload.Schema):
  """A row of edgetpu_compiler's operation table."""
  operator: str
  count: pydantic.NonNegativeInt
  status: str


class CompilerReport(payload.Schema):
  """What edgetpu_compiler reported (components/pusher/edgetpu_compiler.py parses its log)."""
  compiler_path: str
  command: List[str]
  compiler_version: Optional[str]
  operations_total: pydantic.NonNegativeInt
  operations_on_edgetpu: pydantic.NonNegativeInt
  operations_on_cpu: pydantic.NonNegativeInt
  fully_mapped: bool
  edgetpu_subgraphs: Optional[int]
  on_chip_memory_used_bytes: Optional[int]
  on_chip_memory_remaining_bytes: Optional[int]
  off_chip_memory_used_bytes: Optional[int]
  operators: List[CompilerOperator]
  seconds: pydantic.NonNegativeFloat
  # The -m passed to the compiler (None: its default), and the Edge TPU runtime version the compiled
  # model needs, read from its edgetpu-custom-op packages (None: nothing was compiled for the TPU).
  requested_min_runtime_version: Optional[int] = None
  required_runtime_version: Optional[int] = None


class EdgeTpuStatus(payload.Schema):
  compiled: bool  # True when EDGETPU_MODEL_FILE is in this version.
  status: str  # One line for people: compiled and how much maps, or why not.
  compiler: Optional[CompilerReport] = None


class EvaluationRef(payload.Schema):
  """The ModelEvaluation that blessed these bytes, and its metrics.json (None when absent)."""
  uri: str
  metrics: Optional[evaluation_metrics.EvaluationMetrics]


class PushManifest(payload.PayloadFile):
  """model.json of version `version`."""
  DESCRIPTION: ClassVar[str] = "push manifest"
  version: pydantic.PositiveInt
  pushed_at: datetime.datetime  # UTC.
  source_model_uri: str
  source_model_id: int
  model_blessing_uri: str
  files: Dict[str, FileEntry]  # Every file of the version but this manifest.
  input: TensorInfo
  output: TensorInfo
  labels: List[str]  # Index = output position.
  evaluation: Optional[EvaluationRef]
  edgetpu_compatibility: EdgeTpuCompatibility
  edgetpu: EdgeTpuStatus

  @pydantic.model_validator(mode="after")
  def _lists_the_model(self) -> "PushManifest":
    if MODEL_FILE not in self.files:
      raise ValueError(f"'files' must list {MODEL_FILE}")
    if FILE_NAME in self.files:
      raise ValueError(f"'files' must not list the manifest {FILE_NAME} itself")
    return self


def from_json(content: bytes, source: str = FILE_NAME) -> PushManifest:
  """Parses and checks a model.json; raises ValueError naming `source` and every problem."""
  return PushManifest.parse(content, source)


def utc_now() -> datetime.datetime:
  return datetime.datetime.now(datetime.timezone.utc)
