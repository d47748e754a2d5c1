"""`mnist-tfx kubeflow submit` against a stand-in for the Kubeflow Pipelines API server.

The server here is NOT Kubeflow Pipelines: it is a stand-in on loopback implementing the few
v2beta1 REST endpoints kfp.Client calls to start a run (healthz, experiments list/create, run
create with an inline pipeline spec) and recording every request. It proves the client call, the
authentication header and the error lines, not a cluster.
"""

import contextlib
import http.server
import io
import json
import socket
import threading
import urllib.parse

import pytest
import yaml

from mnist_tfx import cli

pytestmark = pytest.mark.integration  # Compiles the pipeline (TFX) and starts a server.

IMAGE = "registry.example/mnist-edgetpu-tfx:test"
TOKEN = "stand-in-service-account-token-0123456789"
COMPILE_ARGS = ["--image", IMAGE, "--pipeline-root", "gs://bucket/root", "--data-dir",
                "gs://bucket/mnist", "--epochs", "3", "--min-int8-accuracy", "0.97"]


class KfpApiServerStandIn(http.server.BaseHTTPRequestHandler):
  """Stand-in for the KFP v2beta1 API server (healthz, experiments, runs); records requests and
  answers 401 to any request without `Authorization: Bearer <expected_token>` when one is set."""

  requests = []
  experiments = {}
  expected_token = None
  open_healthz = False  # Health checks answered without a token (as some gateways do).

  def log_message(self, *args):
    pass

  def _reply(self, status, body):
    data = json.dumps(body).encode()
    self.send_response(status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def _record(self, body=None):
    url = urllib.parse.urlparse(self.path)
    self.requests.append({"method": self.command, "path": url.path,
                          "query": urllib.parse.parse_qs(url.query), "body": body,
                          "authorization": self.headers.get("Authorization")})
    if self.open_healthz and url.path.endswith("/healthz"):
      return url
    if self.expected_token and self.headers.get("Authorization") != (
        f"Bearer {self.expected_token}"):
      self._reply(401 if self.headers.get("Authorization") else 403,
                  {"error": "Unauthorized", "code": 16})
      return None
    return url

  def do_GET(self):
    url = self._record()
    if url is None:
      return
    if url.path == "/apis/v2beta1/healthz":
      self._reply(200, {"multi_user": False})
    elif url.path == "/apis/v2beta1/experiments":
      wanted = json.loads(urllib.parse.parse_qs(url.query)["filter"][0])["predicates"][0]
      found = [e for e in self.experiments.values()
               if e["display_name"] == wanted["stringValue"]]
      self._reply(200, {"experiments": found, "total_size": len(found)} if found else {})
    else:
      self._reply(404, {"error": "Not Found"})

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
      self._reply(200, dict(body, run_id="run-42", state="PENDING"))
    else:
      self._reply(404, {"error": "Not Found"})


@pytest.fixture()
def api_server():
  KfpApiServerStandIn.requests = []
  KfpApiServerStandIn.experiments = {"exp-0": {"experiment_id": "exp-0",
                                               "display_name": "Default"}}
  KfpApiServerStandIn.expected_token = TOKEN
  KfpApiServerStandIn.open_healthz = False
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


def test_submit_sends_the_compiled_spec_to_the_named_experiment_with_the_token(
    api_server, token_file, tmp_path):
  spec_file = str(tmp_path / "pipeline.yaml")
  code, out, err = run_cli("kubeflow", "submit", "--host", api_server, "--experiment",
                           "edge-tpu", "--run-name", "nightly-7", "--token-path", token_file,
                           "--output", spec_file, *COMPILE_ARGS)
  assert code == 0, err
  assert f"Run started: {api_server}/#/runs/details/run-42" in out
  assert TOKEN not in out + err

  requests = KfpApiServerStandIn.requests
  assert all(r["authorization"] == f"Bearer {TOKEN}" for r in requests)
  (created_experiment,) = [r for r in requests
                           if r["method"] == "POST" and r["path"].endswith("/experiments")]
  assert created_experiment["body"]["display_name"] == "edge-tpu"
  (run,) = [r["body"] for r in requests if r["path"] == "/apis/v2beta1/runs"]
  assert run["display_name"] == "nightly-7"
  assert run["experiment_id"] == "exp-1"
  assert run["runtime_config"]["pipeline_root"] == "gs://bucket/root"
  with open(spec_file) as f:
    compiled = yaml.safe_load(f)
  assert run["pipeline_spec"] == compiled  # Exactly the spec `compile` writes.
  tasks = run["pipeline_spec"]["root"]["dag"]["tasks"]
  custom_config = tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]
  assert json.loads(custom_config["constant"])["epochs"] == 3
  assert tasks["Int8Evaluator"]["inputs"]["parameters"]["min_int8_accuracy"][
      "runtimeValue"]["constant"] == 0.97


def test_an_existing_experiment_is_reused(api_server, token_file):
  code, _, err = run_cli("kubeflow", "submit", "--host", api_server, "--token-path", token_file,
                         *COMPILE_ARGS)
  assert code == 0, err
  assert not [r for r in KfpApiServerStandIn.requests
              if r["method"] == "POST" and r["path"].endswith("/experiments")]
  (run,) = [r["body"] for r in KfpApiServerStandIn.requests if r["path"].endswith("/runs")]
  assert run["experiment_id"] == "exp-0"


def test_a_refused_token_is_one_clear_line_and_no_run(api_server, tmp_path, monkeypatch):
  monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH", raising=False)
  wrong = tmp_path / "wrong-token"
  wrong.write_text("not-the-token")
  code, out, err = run_cli("kubeflow", "submit", "--host", api_server, "--token-path",
                           str(wrong), *COMPILE_ARGS)
  assert code == 1
  line = error_line(err)
  assert "401" in line and "not authorized" in line and api_server in line
  assert "not-the-token" not in out + err
  assert not [r for r in KfpApiServerStandIn.requests if r["path"].endswith("/runs")]


def test_a_refusal_after_a_healthy_check_is_one_clear_line(api_server, monkeypatch):
  # The health check passes without a token; the experiments API then answers 403 (kfp.Client's
  # own call, not submit's own health pre-check).
  monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH", raising=False)
  KfpApiServerStandIn.open_healthz = True
  code, _, err = run_cli("kubeflow", "submit", "--host", api_server, *COMPILE_ARGS)
  assert code == 1
  line = error_line(err)
  assert "403" in line and "not authorized" in line
  assert not [r for r in KfpApiServerStandIn.requests if r["path"].endswith("/runs")]


def test_an_unreachable_host_is_one_clear_line():
  with socket.socket() as probe:  # A port nothing listens on.
    probe.bind(("127.0.0.1", 0))
    host = f"http://127.0.0.1:{probe.getsockname()[1]}"
  code, _, err = run_cli("kubeflow", "submit", "--host", host, *COMPILE_ARGS)
  assert code == 1
  line = error_line(err)
  assert line.startswith(f"{FAILED}Cannot reach Kubeflow Pipelines at {host}")
