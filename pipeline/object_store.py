"""The object stores the pipeline's paths may name: gs:// and s3:// (MinIO and others through s3://).

Every component reads and writes its paths itself, through TensorFlow's file layer (`tf.io.gfile`,
so TFX's `fileio`) and Beam's filesystems. gs:// is built into both. s3:// is not built into
TensorFlow (it left TensorFlow core for tensorflow-io, tensorflow/tfx#4537): the module
`pipeline.s3_filesystem` adds it, and every process that touches an s3:// path imports it first
(`enable_s3_if_needed`), Beam's workers included (`beam_args`: Beam imports its
`--beam_plugins` in each worker). Beam's own s3:// filesystem (boto3) comes with apache-beam[aws].

Endpoint and credentials come from the standard AWS environment variables, read by both libraries
in each process: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, and for a store other than
AWS (MinIO, Ceph, ...) AWS_ENDPOINT_URL, e.g. http://minio-service.kubeflow:9000, which
`pipeline.s3_filesystem` also hands to TensorFlow as S3_ENDPOINT (the name tensorflow-io reads).
No TensorFlow import here.
"""

import importlib
from typing import Iterable, List, Optional, Sequence

GCS_SCHEME = "gs://"
S3_SCHEME = "s3://"
# Imported (as a Beam plugin too) to give this process s3://; see its docstring.
S3_FILESYSTEM_MODULE = "pipeline.s3_filesystem"
BEAM_PLUGINS_FLAG = "--beam_plugins"


def uses_s3(paths: Iterable[Optional[str]]) -> bool:
  """Whether any of the paths (None skipped) is an s3:// URI or mentions one."""
  return any(path is not None and S3_SCHEME in path for path in paths)


def enable_s3_if_needed(paths: Iterable[Optional[str]]) -> bool:
  """Gives this process s3:// (imports S3_FILESYSTEM_MODULE, which also shares the endpoint
  variable between the two libraries) when any path uses it; returns whether it did."""
  if not uses_s3(paths):
    return False
  importlib.import_module(S3_FILESYSTEM_MODULE).share_endpoint()
  return True


def beam_args(paths: Iterable[Optional[str]], args: Sequence[str]) -> List[str]:
  """Beam's options `args`, plus `--beam_plugins=S3_FILESYSTEM_MODULE` when any path uses s3://,
  so that each Beam worker process (multi-processing DirectRunner, Dataflow, Flink) can read and
  write s3:// through TensorFlow too. Options already naming the module are left as they are."""
  args = list(args)
  if uses_s3(paths) and not any(S3_FILESYSTEM_MODULE in arg for arg in args
                                if arg.startswith(BEAM_PLUGINS_FLAG)):
    args.append(f"{BEAM_PLUGINS_FLAG}={S3_FILESYSTEM_MODULE}")
  return args
