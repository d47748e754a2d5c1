"""The one line every failed command ends with, and the exit codes."""

import pytest

from core import errors


def test_error_line_is_one_line_with_the_cause_and_the_log():
  anomalies = errors.PipelineInputError(
      "ExampleValidator found 2 data anomalies; refusing to train:\n"
      "  split eval, feature label: High Linfty\n  split eval, dataset: Low count")
  assert errors.error_line(anomalies, "AnomaliesGate", "/r/logs/run.log") == (
      "AnomaliesGate failed: ExampleValidator found 2 data anomalies; refusing to train: split "
      "eval, feature label: High Linfty; split eval, dataset: Low count "
      "(details: /r/logs/run.log)")
  compiler = errors.PipelineInputError("edgetpu_compiler did not map every operation: 3 of 8\n"
                                       "Edge TPU Compiler version 16\nModel compiled")
  assert errors.error_line(compiler, "EdgeTpuPusher", "x.log") == (
      "EdgeTpuPusher failed: edgetpu_compiler did not map every operation: 3 of 8 "
      "(details: x.log)")
  assert errors.exit_code(anomalies) == errors.EXIT_BAD_INPUT == 2
  internal = RuntimeError("worker died")
  assert errors.error_line(internal, "Trainer", "x.log") == (
      "Trainer failed: internal error, RuntimeError: worker died (details: x.log)")
  assert errors.exit_code(internal) == errors.EXIT_INTERNAL_FAILURE == 1


def test_service_errors_are_one_line_without_internal_and_exit_1():
  refused = errors.ServiceError("Kubeflow Pipelines at http://h answered 500: boom")
  assert errors.error_line(refused, "mnist-tfx kubeflow submit") == (
      "mnist-tfx kubeflow submit failed: Kubeflow Pipelines at http://h answered 500: boom")
  assert errors.exit_code(refused) == errors.EXIT_INTERNAL_FAILURE


@pytest.mark.parametrize("error, traceback_shown", [
    (errors.PipelineInputError("bad file"), False),
    (errors.ServiceError("server down"), False),
    (KeyError("surprise"), True),
])
def test_report_prints_a_traceback_only_for_internal_errors(capsys, error, traceback_shown):
  try:
    raise error
  except Exception as raised:  # pylint: disable=broad-except
    code = errors.report(raised, "mnist-tfx x")
  err = capsys.readouterr().err
  assert err.splitlines()[-1] == errors.error_line(error, "mnist-tfx x")
  assert ("Traceback (most recent call last)" in err) == traceback_shown
  assert code == errors.exit_code(error)


def test_a_connection_failure_reads_as_the_operating_systems_reason():
  """What a client library wraps a refused connection in (urllib3 here, botocore wraps the same)
  is reduced to the OS's words, without the wrapper's object repr."""
  import socket

  import urllib3
  with socket.socket() as probe:  # A port nothing listens on.
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
  with pytest.raises(urllib3.exceptions.HTTPError) as refused:
    urllib3.PoolManager(retries=False).request("GET", f"http://127.0.0.1:{port}/")
  assert "object at 0x" in str(refused.value)  # What the library says.
  assert errors.connection_failure_reason(refused.value) == "connection refused"
  with pytest.raises(urllib3.exceptions.MaxRetryError) as retried:
    urllib3.PoolManager(retries=urllib3.Retry(connect=0)).request("GET",
                                                                  f"http://127.0.0.1:{port}/")
  assert errors.connection_failure_reason(retried.value) == "connection refused"
  wrapped = RuntimeError("<urllib3.connection.HTTPConnection object at 0x7f86800fabc0>: Failed "
                         "to establish a new connection\nmore")
  assert errors.connection_failure_reason(wrapped) == "Failed to establish a new connection"
