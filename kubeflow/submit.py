"""Starts a run of a compiled pipeline spec on a Kubeflow Pipelines server (v2beta1 REST API).

The calls are the ones `kfp.Client.create_run_from_pipeline_package` makes (health check, find or
create the experiment, create the run with the spec inline; kfp 2.5's client.py), made through the
same SDK's generated client (`kfp_server_api`) so that each is bounded in time (kfp.Client passes
no timeout, and retries its health check for half a minute) and each answer is read as the server
wrote it. Authentication is the KFP SDK's own: `kfp.client.ServiceAccountTokenVolumeCredentials`
reads a bearer token from `--token-path` or from the file named by KF_PIPELINES_SA_TOKEN_PATH,
again before each request; without either, no credentials are sent (a `kubectl port-forward`
endpoint). The token is never printed, logged or written.

What a deployment answers, and what is said (kubeflow/pipelines#5907, kubeflow/kubeflow#4504; the
API server's errors: backend/src/common/util/error.go, ToGRPCError, and grpc-gateway's
{"error", "code", "message", "details"} body):
- behind Dex or oauth2-proxy an unauthenticated call gets an HTML login page with status 200:
  not authenticated;
- a multi-user deployment (healthz `multi_user`) needs a namespace: asked for before anything is
  created, and named when a 400 mentions it;
- any other refusal (401/403, 404, 500 ...): the status and the server's own message;
- no run id in the answer: an error, never a run URL.
Every failure ends in one `SubmitError` line (core.errors: exit code 1).
"""

import json
from typing import Any, Callable, Dict, Optional, Tuple

from core import errors

DEFAULT_TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 15.0
MESSAGE_LIMIT = 600  # Characters of a server's message shown (its stack traces are not).
JSON_CONTENT_TYPE = "application/json"
PORT_FORWARD_HINT = ("kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80, then --host "
                     "http://localhost:8080")


class SubmitError(errors.ServiceError):
  """The server could not be reached or refused the run; the message is one line."""


def _token_path(token_path: Optional[str]) -> Optional[str]:
  import os

  from kfp import client as kfp_client
  return token_path or os.environ.get(kfp_client.KF_PIPELINES_SA_TOKEN_ENV) or None


def _api_client(host: str, token_file: Optional[str]):
  """The SDK's generated client for HOST, sending the token of `token_file` (re-read before each
  request, as kfp.Client does with these credentials), never retrying a request itself."""
  from kfp.client import set_volume_credentials
  from kfp.client import token_credentials_base
  import kfp_server_api
  config = kfp_server_api.Configuration(host=host.rstrip("/"))
  config.retries = False  # A create call is not repeated behind our back; the time stays bounded.
  if token_file:
    try:
      token_credentials_base.read_token_from_file(token_file)
    except OSError as e:
      raise SubmitError(f"Cannot read the token file {token_file}: {e.strerror}.") from None
    credentials = set_volume_credentials.ServiceAccountTokenVolumeCredentials(path=token_file)
    config.api_key["authorization"] = "placeholder"
    config.api_key_prefix["authorization"] = "Bearer"
    config.refresh_api_key_hook = credentials.refresh_api_key_hook
  return kfp_server_api.ApiClient(config)


def _first_line(text: str) -> str:
  line = next((part.strip() for part in text.splitlines() if part.strip()), "")
  return line if len(line) <= MESSAGE_LIMIT else line[:MESSAGE_LIMIT] + "..."


def server_message(body: Any) -> str:
  """The server's own words in an error body: the first line of grpc-gateway's `message` (or
  `error`), the first line of a plain-text body, or "" (none, or an HTML page)."""
  if isinstance(body, bytes):
    body = body.decode("utf-8", "replace")
  if not body:
    return ""
  try:
    parsed = json.loads(body)
  except ValueError:
    return "" if body.lstrip().startswith("<") else _first_line(body)
  if isinstance(parsed, dict):
    return _first_line(str(parsed.get("message") or parsed.get("error") or ""))
  return ""


def describe_refusal(host: str, what: str, status: int, reason: str, body: Any) -> str:
  """The one line for an HTTP error status answered to `what`."""
  said = server_message(body)
  text = f"Kubeflow Pipelines at {host} answered {status} {reason} to {what}"
  text += f": {said}" if said else ""
  if status in (401, 403):
    return text + (" (not authorized: check the token given by --token-path or "
                   "KF_PIPELINES_SA_TOKEN_PATH, and that it may use this namespace).")
  if status == 400 and "namespace" in said.lower():
    return text + (" (a multi-user deployment: pass --namespace with your profile's "
                   "namespace).")
  if status == 404 and not said:
    return text + " (no Pipelines API at that URL?)."
  return text + "."


class _Api:
  """One server's API calls: each bounded in time, each answer parsed as JSON or refused."""

  def __init__(self, host: str, token_file: Optional[str], timeout_seconds: float):
    import kfp_server_api
    self.host = host
    self.timeout: Tuple[float, float] = (min(CONNECT_TIMEOUT_SECONDS, timeout_seconds),
                                         timeout_seconds)
    client = _api_client(host, token_file)
    self.healthz = kfp_server_api.HealthzServiceApi(client)
    self.experiments = kfp_server_api.ExperimentServiceApi(client)
    self.runs = kfp_server_api.RunServiceApi(client)

  def call(self, what: str, method: Callable, *args, **kwargs) -> Dict[str, Any]:
    """The JSON object `method` answered.

    Raises:
      SubmitError: unreachable, no answer in time, an HTTP error status, or an answer that is
        not JSON (a login page).
    """
    import kfp_server_api
    import urllib3
    try:
      response = method(*args, _request_timeout=self.timeout, _preload_content=False, **kwargs)
    except kfp_server_api.ApiException as e:
      raise SubmitError(describe_refusal(self.host, what, e.status, e.reason, e.body)) from None
    except urllib3.exceptions.ReadTimeoutError:
      raise SubmitError(f"Kubeflow Pipelines at {self.host} did not answer {what} within "
                        f"{self.timeout[1]:g} s (--api-timeout).") from None
    except (urllib3.exceptions.HTTPError, OSError) as e:
      raise SubmitError(f"Cannot reach Kubeflow Pipelines at {self.host}: "
                        f"{errors.connection_failure_reason(e)}.") from None
    content_type = response.headers.get("Content-Type", "")
    try:
      if JSON_CONTENT_TYPE not in content_type:
        raise ValueError(content_type)
      answer = json.loads(response.data)
      if not isinstance(answer, dict):
        raise ValueError(type(answer).__name__)
    except ValueError:
      raise SubmitError(
          f"Kubeflow Pipelines at {self.host} answered {what} with {content_type or 'no type'}, "
          "not the Pipelines API's JSON: not authenticated (a login page, e.g. Dex or "
          "oauth2-proxy, answers unauthenticated calls). Give a token (--token-path or "
          "KF_PIPELINES_SA_TOKEN_PATH), or reach the API without the gateway "
          f"({PORT_FORWARD_HINT}).") from None
    return answer


def _experiment_id(api: _Api, name: str, namespace: Optional[str]) -> str:
  """The id of the experiment called NAME (in NAMESPACE), created when missing."""
  query = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name",
                                      "stringValue": name}]})
  found = api.call("the experiment lookup", api.experiments.list_experiments, filter=query,
                   namespace=namespace)
  for experiment in found.get("experiments") or []:
    if experiment.get("display_name") == name and experiment.get("experiment_id"):
      return experiment["experiment_id"]
  body = {"display_name": name, **({"namespace": namespace} if namespace else {})}
  created = api.call("the experiment creation", api.experiments.create_experiment, body)
  if not created.get("experiment_id"):
    raise SubmitError(f"Kubeflow Pipelines at {api.host} created experiment {name!r} but "
                      "answered no experiment_id.")
  return created["experiment_id"]


def submit(spec_file: str, host: str, pipeline_root: Optional[str] = None,
           experiment: str = "Default", run_name: Optional[str] = None,
           namespace: Optional[str] = None, token_path: Optional[str] = None,
           timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> str:
  """Starts a run of SPEC_FILE (a PipelineSpec YAML, and its platform spec when it has one) in
  EXPERIMENT (created when missing);
  returns the run's URL. Each API call is bounded by `timeout_seconds`.

  Raises:
    SubmitError: unreachable host, no answer in time, not authenticated, a multi-user deployment
      without `namespace`, any refusal (with the server's message), or no run id answered.
  """
  import datetime

  import yaml
  if not host.startswith(("http://", "https://")):
    raise SubmitError(f"--host {host!r} must start with http:// or https://.")
  with open(spec_file) as f:
    pipeline_spec, *platform_specs = [doc for doc in yaml.safe_load_all(f) if doc]
  api = _Api(host, _token_path(token_path), timeout_seconds)
  health = api.call("the health check", api.healthz.get_healthz)
  if health.get("multi_user") and not namespace:
    raise SubmitError(f"Kubeflow Pipelines at {host} is a multi-user deployment: pass "
                      "--namespace with your profile's namespace.")
  run = {
      "experiment_id": _experiment_id(api, experiment, namespace),
      "display_name": run_name or (f"{pipeline_spec['pipelineInfo']['name']} "
                                   f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S}"),
      # With a platform spec, both as kfp's client sends them (client.py _PipelineDoc.to_dict),
      # which the API server joins again (apiserver/server/api_util.go:119-149 at 2.0.0).
      "pipeline_spec": ({"pipeline_spec": pipeline_spec, "platform_spec": platform_specs[0]}
                        if platform_specs else pipeline_spec),
      "runtime_config": {"pipeline_root": pipeline_root} if pipeline_root else {},
  }
  created = api.call("the run", api.runs.create_run, run)
  if not created.get("run_id"):
    raise SubmitError(f"Kubeflow Pipelines at {host} answered the run request without a run id; "
                      "no run is known to have started.")
  return f"{host.rstrip('/')}/#/runs/details/{created['run_id']}"
