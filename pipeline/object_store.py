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
`share_endpoint` also hands to TensorFlow as S3_ENDPOINT (the name tensorflow-io reads).

What a process reads here before the pipeline runs (`mnist-tfx kubeflow compile` fingerprints the
data) is probed first with boto3 (`check_s3_access`), bounded in time: tensorflow-io's AWS SDK
waits up to 5 minutes per connection and retries for minutes more (tensorflow/io
tensorflow_io/core/filesystems/s3/s3_filesystem.cc, kS3TimeoutMsec, GetDefaultClientConfig), and
its errors read as if nothing were there.
No TensorFlow import here.
"""

import importlib
import os
from typing import Iterable, List, Mapping, MutableMapping, Optional, Sequence, Tuple

from core.errors import PipelineInputError
from core.errors import connection_failure_reason

GCS_SCHEME = "gs://"
S3_SCHEME = "s3://"
# Imported (as a Beam plugin too) to give this process s3://; see its docstring.
S3_FILESYSTEM_MODULE = "pipeline.s3_filesystem"
BEAM_PLUGINS_FLAG = "--beam_plugins"
# Read by botocore (hence Beam's s3://) / by tensorflow-io's S3 filesystem.
AWS_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
TENSORFLOW_ENDPOINT_VARIABLE = "S3_ENDPOINT"
# The probe's bounds: seconds to connect, seconds to wait for an answer, attempts in all.
PROBE_CONNECT_TIMEOUT_SECONDS = 5
PROBE_READ_TIMEOUT_SECONDS = 20
PROBE_MAX_ATTEMPTS = 2
# S3's answers for a bucket that does not exist (ListObjectsV2 / HeadBucket), and for a refusal.
_NO_SUCH_BUCKET = "NoSuchBucket"
_NOT_FOUND = ("404", "NotFound")
_ACCESS_DENIED = ("AccessDenied", "403", "AllAccessDisabled", "Forbidden")
_CREDENTIALS_REFUSED = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                        "ExpiredToken", "TokenRefreshRequired")


def uses_s3(paths: Iterable[Optional[str]]) -> bool:
  """Whether any of the paths (None skipped) is an s3:// URI or mentions one."""
  return any(path is not None and S3_SCHEME in path for path in paths)


def enable_s3_if_needed(paths: Iterable[Optional[str]]) -> bool:
  """Gives this process s3:// (imports S3_FILESYSTEM_MODULE, which also shares the endpoint
  variable between the two libraries) when any path uses it; returns whether it did."""
  if not uses_s3(paths):
    return False
  importlib.import_module(S3_FILESYSTEM_MODULE)
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


def share_endpoint(environ: MutableMapping[str, str] = os.environ) -> None:
  """Sets S3_ENDPOINT from AWS_ENDPOINT_URL or the other way round, when only one is set."""
  for source, target in ((AWS_ENDPOINT_VARIABLE, TENSORFLOW_ENDPOINT_VARIABLE),
                         (TENSORFLOW_ENDPOINT_VARIABLE, AWS_ENDPOINT_VARIABLE)):
    if environ.get(source) and not environ.get(target):
      environ[target] = environ[source]


def s3_endpoint(environ: Mapping[str, str] = os.environ) -> Optional[str]:
  """The S3 endpoint both libraries reach: AWS_ENDPOINT_URL, else S3_ENDPOINT (https:// when it
  names no scheme, as the AWS SDK for C++ takes it); None for Amazon S3 itself."""
  endpoint = environ.get(AWS_ENDPOINT_VARIABLE) or environ.get(TENSORFLOW_ENDPOINT_VARIABLE)
  if endpoint and "://" not in endpoint:
    endpoint = "https://" + endpoint
  return endpoint or None


def split_s3_uri(uri: str) -> Tuple[str, str]:
  """(bucket, key prefix) of s3://BUCKET/PREFIX; the prefix ends in "/" unless empty."""
  bucket, _, prefix = uri[len(S3_SCHEME):].partition("/")
  prefix = prefix.strip("/")
  return bucket, prefix + "/" if prefix else ""


def _s3_client(endpoint: Optional[str]):
  """A boto3 S3 client of ENDPOINT with the standard credential chain, bounded in time."""
  import boto3
  from botocore import config
  bounds = config.Config(connect_timeout=PROBE_CONNECT_TIMEOUT_SECONDS,
                         read_timeout=PROBE_READ_TIMEOUT_SECONDS,
                         retries={"total_max_attempts": PROBE_MAX_ATTEMPTS, "mode": "standard"})
  try:
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=bounds)
  except ValueError as e:  # botocore: "Invalid endpoint: ...".
    raise PipelineInputError(f"{AWS_ENDPOINT_VARIABLE} {endpoint!r} is not a URL the S3 client "
                             f"takes ({e}); give e.g. http://minio-service.kubeflow:9000") from None


def describe_s3_failure(error: Exception, bucket: str, endpoint: Optional[str]) -> str:
  """Why the store at ENDPOINT (None: Amazon S3) did not list BUCKET, in one line: unreachable
  (the operating system's reason), no answer in time, no credentials, credentials refused, access
  denied, no such bucket, or what the store answered."""
  from botocore import exceptions
  store = (f"the S3 store at {endpoint}" if endpoint
           else f"Amazon S3 (no {AWS_ENDPOINT_VARIABLE} set)")
  if isinstance(error, (exceptions.NoCredentialsError, exceptions.PartialCredentialsError)):
    return (f"no S3 credentials for {store}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE)")
  if isinstance(error, (exceptions.ConnectTimeoutError, exceptions.ReadTimeoutError)):
    return (f"{store} did not answer within {PROBE_CONNECT_TIMEOUT_SECONDS} s (connecting) or "
            f"{PROBE_READ_TIMEOUT_SECONDS} s (answering); is {AWS_ENDPOINT_VARIABLE} right?")
  if isinstance(error, exceptions.ClientError):
    answer = error.response.get("Error", {})
    code = str(answer.get("Code", ""))
    # A bare 404 says "no such bucket" only to HeadBucket, whose answers have no body; to a
    # listing, S3 says NoSuchBucket, and a bare 404 is from something else than an S3 API.
    if code == _NO_SUCH_BUCKET or (code in _NOT_FOUND and error.operation_name == "HeadBucket"):
      return f"bucket {bucket!r} does not exist at {store}"
    if code in _NOT_FOUND:
      return f"{store} answered {code} {answer.get('Message', '')} to a listing: not an S3 API?"
    if code in _ACCESS_DENIED:
      return (f"access denied to bucket {bucket!r} at {store} ({code}): check the "
              "credentials' rights")
    if code in _CREDENTIALS_REFUSED:
      return (f"{store} refused the credentials ({code}): check AWS_ACCESS_KEY_ID and "
              "AWS_SECRET_ACCESS_KEY")
    return f"{store} answered {code}: {answer.get('Message', '')}".rstrip(": ")
  return f"cannot reach {store}: {connection_failure_reason(error)}"


def check_s3_access(readable: Mapping[str, Optional[str]],
                    bucket_only: Optional[Mapping[str, Optional[str]]] = None,
                    environ: Mapping[str, str] = os.environ) -> None:
  """Probes, bounded in time, the s3:// paths this process is about to read through TensorFlow:
  each of READABLE must be listable (store reachable, credentials taken, bucket there, access
  granted); each bucket of BUCKET_ONLY must exist where the store answers (paths the pods, not
  this machine, use: only a definite "no such bucket" is refused). Other schemes and None are
  skipped; no client is made when no path is on s3://.

  Args:
    readable, bucket_only: {option name: path}.
    environ: the environment giving the endpoint (AWS_ENDPOINT_URL or S3_ENDPOINT); credentials
      and region come from the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...).

  Raises:
    PipelineInputError: naming the option, the path, the store and the cause
      (`describe_s3_failure`).
  """
  from botocore import exceptions
  probes = [(option, path, True) for option, path in readable.items()]
  probes += [(option, path, False) for option, path in (bucket_only or {}).items()]
  probes = [probe for probe in probes if probe[1] and probe[1].startswith(S3_SCHEME)]
  if not probes:
    return
  endpoint = s3_endpoint(environ)
  client = _s3_client(endpoint)
  seen = set()
  for option, path, must_read in probes:
    bucket, prefix = split_s3_uri(path)
    if not must_read and bucket in seen:
      continue
    seen.add(bucket)
    try:
      if must_read:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
      else:
        client.head_bucket(Bucket=bucket)
    except (exceptions.BotoCoreError, exceptions.ClientError) as e:
      cause = describe_s3_failure(e, bucket, endpoint)
      if must_read:
        raise PipelineInputError(f"{option} {path!r} cannot be read here: {cause}") from None
      if cause.startswith(f"bucket {bucket!r} does not exist"):
        raise PipelineInputError(f"{option} {path!r}: {cause}") from None
