"""s3:// for TensorFlow and Beam, against the object store stand-in (moto's server on loopback).

Each case runs in a process of its own, as a task, `mnist-tfx` or a Beam worker would: what is
checked is the exit code and console of a whole process.
"""

import subprocess
import sys
import textwrap

import pytest

from pipeline import object_store

PLUGIN = f"--beam_plugins={object_store.S3_FILESYSTEM_MODULE}"
ABORT = "pure virtual method called"


def test_beam_workers_get_the_plugin_only_when_a_path_is_on_s3():
  assert object_store.beam_args(["gs://b/root", "/local", None], ["--runner=X"]) == ["--runner=X"]
  assert object_store.beam_args(["s3://b/root", None], ["--runner=X"]) == ["--runner=X", PLUGIN]
  assert object_store.beam_args(["s3://b/root"], [PLUGIN]) == [PLUGIN]  # Given once.
  assert not object_store.uses_s3(["gs://b/x", "minio://b/x"])


def run_python(script: str, env=None) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                        text=True, check=False, timeout=300, env=env)


WRITE_AND_READ = """
    import sys
    {setup}
    import tensorflow as tf
    path = "s3://{bucket}/exit/x.txt"
    with tf.io.gfile.GFile(path, "w") as f:
      f.write("written")
    print("read back:", tf.io.gfile.GFile(path).read(), end="")  # Not flushed by a newline.
    {end}
"""
ENABLE = "from pipeline import object_store; object_store.enable_s3_if_needed([path := 's3://'])"


@pytest.mark.integration
@pytest.mark.parametrize("end, expected_code", [
    ("", 0), ("sys.exit(3)", 3), ("raise RuntimeError('failed on purpose')", 1)])
def test_a_process_that_used_s3_ends_with_its_own_exit_code(s3_store, end, expected_code):
  bucket = s3_store.new_bucket()
  done = run_python(WRITE_AND_READ.format(setup=ENABLE, bucket=bucket, end=end))
  assert done.returncode == expected_code, done.stderr
  assert done.stdout == "read back: written"  # Python's shutdown flushed it.
  assert ABORT not in done.stderr
  assert ("failed on purpose" in done.stderr) == (expected_code == 1)
  assert s3_store.keys(bucket) == {"exit/x.txt": len("written")}


@pytest.mark.integration
def test_without_it_tensorflow_io_aborts_a_process_that_did_its_work(s3_store):
  """What pipeline.s3_filesystem guards against (the reason the test above can fail)."""
  bucket = s3_store.new_bucket()
  setup = "import os, tensorflow_io; os.environ['S3_ENDPOINT'] = os.environ['AWS_ENDPOINT_URL']"
  done = run_python(WRITE_AND_READ.format(setup=setup, bucket=bucket, end=""))
  assert done.returncode == -6 or done.returncode == 134, done.returncode  # SIGABRT.
  assert ABORT in done.stderr
  assert s3_store.keys(bucket) == {"exit/x.txt": len("written")}


BEAM_WORKERS = """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from pipeline import object_store

    class WriteWithTensorFlow(beam.DoFn):
      def process(self, i):
        import tensorflow as tf  # In the worker process: no tensorflow_io imported here.
        with tf.io.gfile.GFile(f"s3://{bucket}/workers/{{i}}.txt", "w") as f:
          f.write(str(i))
        yield i

    args = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
            "--direct_num_workers=2"]
    with beam.Pipeline(options=PipelineOptions(
        object_store.beam_args(["s3://{bucket}"], args))) as p:
      _ = p | beam.Create(range(6)) | beam.Reshuffle() | beam.ParDo(WriteWithTensorFlow())
"""


@pytest.mark.integration
def test_beam_worker_processes_read_and_write_s3_through_tensorflow(s3_store):
  bucket = s3_store.new_bucket()
  done = run_python(BEAM_WORKERS.format(bucket=bucket))
  assert done.returncode == 0, done.stderr[-3000:]
  assert ABORT not in done.stderr and "exited with return code" not in done.stderr
  assert s3_store.keys(bucket) == {f"workers/{i}.txt": 1 for i in range(6)}


def test_one_endpoint_for_both_libraries():
  environ = {"S3_ENDPOINT": "minio.example:9000"}
  object_store.share_endpoint(environ)
  assert environ["AWS_ENDPOINT_URL"] == "minio.example:9000"
  assert object_store.s3_endpoint({"S3_ENDPOINT": "minio.example:9000"}) == (
      "https://minio.example:9000")  # No scheme: https, as the AWS SDK for C++ takes it.
  assert object_store.s3_endpoint({"AWS_ENDPOINT_URL": "http://a:9000", "S3_ENDPOINT": "b"}) == (
      "http://a:9000")
  assert object_store.s3_endpoint({}) is None
  assert object_store.split_s3_uri("s3://bucket/a/b/") == ("bucket", "a/b/")
  assert object_store.split_s3_uri("s3://bucket") == ("bucket", "")


def test_nothing_is_probed_without_an_s3_path():
  object_store.check_s3_access({"--data-dir": "gs://b/d"}, {"--pipeline-root": None},
                               environ={"AWS_ENDPOINT_URL": "not a url"})
