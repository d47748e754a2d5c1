"""`mnist-tfx kubeflow submit` against a stand-in for the Kubeflow Pipelines API server.

The server here is NOT Kubeflow Pipelines: it is a stand-in on loopback implementing the few
v2beta1 REST endpoints a run's submission calls (healthz, experiments list/create, run create with
an inline pipeline spec), recording every request, and answering as a deployment does
(kubeflow/pipelines#5907, kubeflow/kubeflow#4504; the API server's messages and grpc-gateway's
error body, backend/src/apiserver at tag 2.0.0/2.5.0): a login page with status 200 behind Dex or
oauth2-proxy, multi-user refusals without a namespace, an unknown experiment, the run-creation
refusal of tests/kfp_v2_driver.py. It proves the client calls, the authentication header and the
error lines, not a cluster.
"""

import contextlib
import http.server
import io
import json
import socket
import threading
import time
import urllib.parse

from mnist_tfx.kubeflow import submit
import pytest
import yaml

from mnist_tfx import cli
from tests import kfp_v2_driver

pytestmark = pytest.mark.integration  # Compiles the pipeline (TFX) and starts a server.

IMAGE = "registry.example/mnist-edgetpu-tfx:2026-12-01"
TOKEN = "stand-in-service-account-token-0123456789"
LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Log in to Your Account</title></head><body>"
              b"<form action=\"/dex/auth/local/login\" method=\"post\"></form></body></html>")


def error_body(status_code: int, message: str, short: str):
  """grpc-gateway v1.16's error body, as the API server (KFP <= 2.5) answers a refused call."""
  return {"error": message, "code": status_code, "message": message,
          "details": [{"@type": "type.googleapis.com/google.rpc.Status", "code": status_code,
                       "message": short}]}


# backend/src/apiserver/server/experiment_server.go (2.0.0) :341-343, wrapped as it is answered.
EMPTY_NAMESPACE = error_body(
    3, "List experiments failed: Failed to authorize with API: Invalid input error: An experiment "
    "cannot have an empty namespace in multi-user mode",
    "An experiment cannot have an empty namespace in multi-user mode")
# resource_manager.go GetValidExperimentNamespacePair and storage/experiment_store.go (2.0.0).
UNKNOWN_EXPERIMENT = error_body(
    5, "Failed to create a new run: Failed to create a run due to invalid experimentId and "
    "namespace combination: Failed to fetch namespace for experiment ID: Failed to fetch "
    "namespace from experiment ID: ResourceNotFoundError: Experiment ID not found",
    "Experiment ID not found")


class KfpApiServerStandIn(http.server.BaseHTTPRequestHandler):
  """Stand-in for the KFP v2beta1 API server (healthz, experiments, runs); records requests and
  answers 401 to any request without `Authorization: Bearer <expected_token>` when one is set.
  `mode` picks a deployment: "single-user", "multi-user", "namespace-required" (a gateway whose
  health answer does not say multi-user), "login-page", "stale-experiment" (listed but unknown to
  the run API), "no-run-id", "stalled" (answers after `stall_seconds`)."""

  requests = []
  experiments = {}
  expected_token = None
  open_healthz = False  # Health checks answered without a token (as some gateways do).
  mode = "single-user"
  stall_seconds = 0.0

  def log_message(self, *args):
    pass

  def _reply(self, status, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def _record(self, body=None):
    url = urllib.parse.urlparse(self.path)
    self.requests.append({"method": self.command, "path": url.path,
                          "query": urllib.parse.parse_qs(url.query), "body": body,
                          "authorization": self.headers.get("Authorization")})
    if self.mode == "stalled":
      time.sleep(self.stall_seconds)
    if self.mode == "login-page":  # Dex / oauth2-proxy: every unauthenticated call.
      self._reply(200, LOGIN_PAGE, "text/html; charset=utf-8")
      return None
    if self.open_healthz and url.path.endswith("/healthz"):
      return url
    if self.expected_token and self.headers.get("Authorization") != (
        f"Bearer {self.expected_token}"):
      self._reply(401 if self.headers.get("Authorization") else 403,
                  error_body(16, "Unauthenticated", "Unauthenticated"))
      return None
    return url

  def do_GET(self):
    url = self._record()
    if url is None:
      return
    query = urllib.parse.parse_qs(url.query)
    if url.path == "/apis/v2beta1/healthz":
      self._reply(200, {"commit_sha": "stand-in", "tag_name": "2.5.0",
                        "multi_user": self.mode == "multi-user"})
    elif url.path == "/apis/v2beta1/experiments":
      if self.mode in ("multi-user", "namespace-required") and not query.get("namespace"):
        self._reply(400, EMPTY_NAMESPACE)
        return
      wanted = json.loads(query["filter"][0])["predicates"][0]
      found = [e for e in self.experiments.values()
               if e["display_name"] == wanted["stringValue"]]
      self._reply(200, {"experiments": found, "total_size": len(found)} if found else {})
    else:
      self._reply(404, b"404 page not found", "text/plain; charset=utf-8")

  def do_POST(self):
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    url = self._record(body)
    if url is None:
      return
    if url.path == "/apis/v2beta1/experiments":
      experiment = dict(body, experiment_id=f"exp-{len(self.experiments)}")
      self.experiments[experiment["experiment_id"]] = experiment
      self._reply(200, experiment)
    elif url.path == "/apis/v2beta1/runs":
      self._create_run(body)
    else:
      self._reply(404, b"404 page not found", "text/plain; charset=utf-8")

  def _create_run(self, body):
    """The API server's order (run_server.go createRun): experiment, then the compile."""
    if self.mode == "stale-experiment" or body["experiment_id"] not in self.experiments:
      self._reply(404, UNKNOWN_EXPERIMENT)
      return
    spec = body["pipeline_spec"]
    try:
      kfp_v2_driver.check_run_creation(spec.get("pipeline_spec", spec))
    except kfp_v2_driver.RunCreationRefused as refused:
      self._reply(refused.status, refused.body)
      return
    self._reply(200, {} if self.mode == "no-run-id" else dict(body, run_id="run-42",
                                                               state="PENDING"))


@pytest.fixture()
def api_server():
  KfpApiServerStandIn.requests = []
  KfpApiServerStandIn.experiments = {"exp-0": {"experiment_id": "exp-0",
                                               "display_name": "Default"}}
  KfpApiServerStandIn.expected_token = TOKEN
  KfpApiServerStandIn.open_healthz = False
  KfpApiServerStandIn.mode = "single-user"
  KfpApiServerStandIn.stall_seconds = 0.0
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KfpApiServerStandIn)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{server.server_address[1]}"
  server.shutdown()
  server.server_close()


def run_cli(*argv):
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(list(argv))
  return code, out.getvalue(), err.getvalue()


FAILED = "mnist-tfx kubeflow submit failed: "


def error_line(stderr: str) -> str:
  """The one error line, which must end what was printed (compiling logs come before it)."""
  lines = stderr.strip().splitlines()
  (line,) = [text for text in lines if text.startswith(FAILED)]
  assert lines[-1] == line
  return line


@pytest.fixture()
def token_file(tmp_path, monkeypatch):
  monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH", raising=False)
  path = tmp_path / "token"
  path.write_text(TOKEN)
  return str(path)


@pytest.fixture(scope="module")
def compile_args(s3_mnist_slice):
  root = s3_mnist_slice.rsplit("/", 1)[0] + "/root"
  return ["--image", IMAGE, "--pipeline-root", root, "--data-dir", s3_mnist_slice, "--epochs",
          "3", "--min-int8-accuracy", "0.97"]


@pytest.fixture(scope="module")
def spec_file(compile_args, tmp_path_factory):
  """A spec `compile` wrote, for the cases that call `submit.submit` directly."""
  path = str(tmp_path_factory.mktemp("spec") / "pipeline.yaml")
  assert run_cli("kubeflow", "compile", "--output", path, *compile_args)[0] == 0
  return path


def requests_to(path_end: str, method: str = "POST"):
  return [r for r in KfpApiServerStandIn.requests
          if r["method"] == method and r["path"].endswith(path_end)]


def test_submit_sends_the_compiled_spec_to_the_named_experiment_with_the_token(
    api_server, token_file, tmp_path, compile_args):
  spec = str(tmp_path / "pipeline.yaml")
  code, out, err = run_cli("kubeflow", "submit", "--host", api_server, "--experiment",
                           "edge-tpu", "--run-name", "nightly-7", "--token-path", token_file,
                           "--output", spec, *compile_args)
  assert code == 0, err
  assert out.strip().splitlines()[-1] == f"Run started: {api_server}/#/runs/details/run-42"
  assert TOKEN not in out + err

  requests = KfpApiServerStandIn.requests
  assert [(r["method"], r["path"]) for r in requests] == [
      ("GET", "/apis/v2beta1/healthz"), ("GET", "/apis/v2beta1/experiments"),
      ("POST", "/apis/v2beta1/experiments"), ("POST", "/apis/v2beta1/runs")]
  assert all(r["authorization"] == f"Bearer {TOKEN}" for r in requests)
  (created_experiment,) = requests_to("/experiments")
  assert created_experiment["body"] == {"display_name": "edge-tpu"}
  (run,) = [r["body"] for r in requests_to("/runs")]
  assert run["display_name"] == "nightly-7"
  assert run["experiment_id"] == "exp-1"
  assert run["runtime_config"]["pipeline_root"] == compile_args[3]
  with open(spec) as f:
    compiled = yaml.safe_load(f)
  assert run["pipeline_spec"] == compiled  # Exactly the spec `compile` writes.
  tasks = run["pipeline_spec"]["root"]["dag"]["tasks"]
  custom_config = tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]
  assert json.loads(custom_config["constant"])["epochs"] == 3
  assert tasks["Int8Evaluator"]["inputs"]["parameters"]["min_int8_accuracy"][
      "runtimeValue"]["constant"] == 0.97


def test_a_platform_spec_is_sent_beside_the_pipeline_spec(api_server, token_file, tmp_path,
                                                          compile_args):
  """As kfp's client sends a spec with kfp-kubernetes settings (its _PipelineDoc.to_dict)."""
  spec = str(tmp_path / "pipeline.yaml")
  code, _, err = run_cli("kubeflow", "submit", "--host", api_server, "--token-path", token_file,
                         "--output", spec, "--env", "AWS_ENDPOINT_URL=http://minio:9000",
                         "--secret-env", "mlpipeline-minio-artifact:accesskey=AWS_ACCESS_KEY_ID",
                         *compile_args)
  assert code == 0, err
  (run,) = [r["body"] for r in requests_to("/runs")]
  assert run["pipeline_spec"] == {"pipeline_spec": kfp_v2_driver.read_pipeline_spec(spec),
                                  "platform_spec": kfp_v2_driver.read_platform_spec(spec)}


def test_an_existing_experiment_is_reused(api_server, token_file, spec_file):
  url = submit.submit(spec_file, api_server, token_path=token_file)
  assert url == f"{api_server}/#/runs/details/run-42"
  assert not requests_to("/experiments")
  (run,) = [r["body"] for r in requests_to("/runs")]
  assert run["experiment_id"] == "exp-0"
  assert run["display_name"].startswith("mnist-edgetpu ")  # The pipeline's name and the time.


def test_a_refused_token_is_one_clear_line_and_no_run(api_server, tmp_path, monkeypatch,
                                                      compile_args):
  monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH", raising=False)
  wrong = tmp_path / "wrong-token"
  wrong.write_text("not-the-token")
  code, out, err = run_cli("kubeflow", "submit", "--host", api_server, "--token-path",
                           str(wrong), *compile_args)
  assert code == 1
  line = error_line(err)
  assert "401" in line and "not authorized" in line and api_server in line
  assert "Run started" not in out
  assert "not-the-token" not in out + err
  assert not requests_to("/runs")


def test_a_refusal_after_a_healthy_check_is_one_clear_line(api_server, monkeypatch, spec_file):
  # The health check passes without a token; the experiments API then answers 403.
  monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH", raising=False)
  KfpApiServerStandIn.open_healthz = True
  with pytest.raises(submit.SubmitError, match="403 Forbidden to the experiment lookup: "
                     "Unauthenticated .not authorized"):
    submit.submit(spec_file, api_server)
  assert not requests_to("/runs")


def test_a_login_page_is_not_authenticated_and_no_run_is_reported(api_server, compile_args):
  """Dex or oauth2-proxy answers an unauthenticated call with its login page, status 200:
  kfp.Client then printed `Run started: .../None` (kubeflow/pipelines#5907)."""
  KfpApiServerStandIn.mode = "login-page"
  code, out, err = run_cli("kubeflow", "submit", "--host", api_server, *compile_args)
  assert code == 1
  line = error_line(err)
  assert line == (f"{FAILED}Kubeflow Pipelines at {api_server} answered the health check with "
                  "text/html; charset=utf-8, not the Pipelines API's JSON: not authenticated (a "
                  "login page, e.g. Dex or oauth2-proxy, answers unauthenticated calls). Give a "
                  "token (--token-path or KF_PIPELINES_SA_TOKEN_PATH), or reach the API without "
                  f"the gateway ({submit.PORT_FORWARD_HINT}).")
  assert "Run started" not in out
  assert [r["path"] for r in KfpApiServerStandIn.requests] == ["/apis/v2beta1/healthz"]


def test_a_multi_user_deployment_needs_a_namespace(api_server, token_file, spec_file):
  KfpApiServerStandIn.mode = "multi-user"
  with pytest.raises(submit.SubmitError, match="is a multi-user deployment: pass --namespace"):
    submit.submit(spec_file, api_server, token_path=token_file)
  assert [r["path"] for r in KfpApiServerStandIn.requests] == ["/apis/v2beta1/healthz"]

  url = submit.submit(spec_file, api_server, token_path=token_file, namespace="team-a",
                      experiment="edge-tpu")
  assert url.endswith("/#/runs/details/run-42")
  (listed,) = requests_to("/experiments", "GET")
  assert listed["query"]["namespace"] == ["team-a"]
  (created,) = requests_to("/experiments")
  assert created["body"] == {"display_name": "edge-tpu", "namespace": "team-a"}


def test_a_namespace_refusal_names_the_option(api_server, token_file, spec_file):
  """A deployment whose health answer does not say multi-user, still refusing without a
  namespace: its 400 names the namespace, and so does the line."""
  KfpApiServerStandIn.mode = "namespace-required"
  with pytest.raises(submit.SubmitError) as raised:
    submit.submit(spec_file, api_server, token_path=token_file)
  assert str(raised.value) == (
      f"Kubeflow Pipelines at {api_server} answered 400 Bad Request to the experiment lookup: "
      f"{EMPTY_NAMESPACE['message']} (a multi-user deployment: pass --namespace with your "
      "profile's namespace).")
  assert not requests_to("/runs")


def test_the_servers_own_message_is_shown(api_server, token_file, spec_file, tmp_path):
  KfpApiServerStandIn.mode = "stale-experiment"
  with pytest.raises(submit.SubmitError) as raised:
    submit.submit(spec_file, api_server, token_path=token_file)
  assert str(raised.value) == (f"Kubeflow Pipelines at {api_server} answered 404 Not Found to "
                               f"the run: {UNKNOWN_EXPERIMENT['message']}.")

  # The open-source backend's refusal of a spec with Resolver tasks (HTTP 500).
  KfpApiServerStandIn.mode = "single-user"
  with open(spec_file) as f:
    spec = yaml.safe_load(f)
  spec["deploymentSpec"]["executors"]["AnomaliesGate_executor"] = {"resolver": {}}
  with_resolver = tmp_path / "with_resolver.yaml"
  with_resolver.write_text(yaml.safe_dump(spec))
  with pytest.raises(submit.SubmitError) as raised:
    submit.submit(str(with_resolver), api_server, token_path=token_file)
  assert str(raised.value) == (
      f"Kubeflow Pipelines at {api_server} answered 500 Internal Server Error to the run: "
      'Internal error: error processing component name="AnomaliesGate": '
      'executor(label="AnomaliesGate_executor"): non-container and non-importer executor not '
      "implemented.")


def test_no_run_id_is_never_reported_as_a_run(api_server, token_file, spec_file):
  KfpApiServerStandIn.mode = "no-run-id"
  with pytest.raises(submit.SubmitError, match="answered the run request without a run id; no "
                     "run is known to have started"):
    submit.submit(spec_file, api_server, token_path=token_file)


def test_every_call_is_bounded_in_time(api_server, token_file, spec_file):
  KfpApiServerStandIn.mode = "stalled"
  KfpApiServerStandIn.stall_seconds = 5.0
  started = time.monotonic()
  with pytest.raises(submit.SubmitError, match="did not answer the health check within 1 s "
                     r"\(--api-timeout\)"):
    submit.submit(spec_file, api_server, token_path=token_file, timeout_seconds=1.0)
  assert time.monotonic() - started < 4.0
  assert len(KfpApiServerStandIn.requests) == 1  # Not retried.


@pytest.mark.parametrize("body, said", [
    (json.dumps(EMPTY_NAMESPACE), EMPTY_NAMESPACE["message"]),
    (json.dumps({"code": 5, "message": "Experiment X not found", "details": []}),
     "Experiment X not found"),  # KFP >= 2.14: no "error" key.
    ("RBAC: access denied", "RBAC: access denied"),  # Istio's plain-text refusal.
    ("<html><body>Forbidden</body></html>", ""),
    ("", ""),
])
def test_server_message_reads_each_body_shape(body, said):
  assert submit.server_message(body.encode()) == said


def test_an_unreachable_host_is_one_clear_line(spec_file):
  with socket.socket() as probe:  # A port nothing listens on.
    probe.bind(("127.0.0.1", 0))
    host = f"http://127.0.0.1:{probe.getsockname()[1]}"
  with pytest.raises(submit.SubmitError) as refused:
    submit.submit(spec_file, host)
  # The operating system's reason, not the client library's wrapper objects.
  assert str(refused.value) == f"Cannot reach Kubeflow Pipelines at {host}: connection refused."
  assert "object at 0x" not in str(refused.value)
