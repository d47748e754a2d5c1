"""Starts a run of a compiled pipeline spec on a Kubeflow Pipelines server with `kfp.Client`.

Authentication is the KFP SDK's own: `kfp.client.ServiceAccountTokenVolumeCredentials` reads a
bearer token from `--token-path` or from the file named by KF_PIPELINES_SA_TOKEN_PATH, again before
each request; without either, no credentials are sent (a `kubectl port-forward` endpoint). The
token is never printed, logged or written.

Server failures end in one `SubmitError` line: unreachable host, 401/403 (not authorized), 404 (no
Pipelines API at that URL, or no such experiment), any other HTTP status.
"""

import os
from typing import Optional
import urllib.error
import urllib.request

from core import errors

HEALTHZ_PATH = "/apis/v2beta1/healthz"
CONNECT_TIMEOUT_SECONDS = 15


class SubmitError(errors.ServiceError):
  """The server could not be reached or refused the run; the message is one line."""


def _token_path(token_path: Optional[str]) -> Optional[str]:
  from kfp import client as kfp_client
  return token_path or os.environ.get(kfp_client.KF_PIPELINES_SA_TOKEN_ENV) or None


def _describe_status(host: str, status: int, reason: str, what: str) -> str:
  if status in (401, 403):
    return (f"Kubeflow Pipelines at {host} refused {what}: {status} {reason} (not authorized; "
            "check the token given by --token-path or KF_PIPELINES_SA_TOKEN_PATH).")
  if status == 404:
    return (f"Kubeflow Pipelines at {host} answered 404 {reason} to {what} (no Pipelines API at "
            "that URL, or no such experiment).")
  return f"Kubeflow Pipelines at {host} answered {status} {reason} to {what}."


def _check_server(host: str, token_file: Optional[str]) -> None:
  """One health request, so that an unreachable or refusing server fails at once (kfp.Client
  retries its own health check for half a minute)."""
  from kfp.client import token_credentials_base
  request = urllib.request.Request(host.rstrip("/") + HEALTHZ_PATH)
  if token_file:
    try:
      token = token_credentials_base.read_token_from_file(token_file)
    except OSError as e:
      raise SubmitError(f"Cannot read the token file {token_file}: {e.strerror}.") from None
    request.add_header("Authorization", f"Bearer {token}")
  try:
    with urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT_SECONDS):
      pass
  except urllib.error.HTTPError as e:
    raise SubmitError(_describe_status(host, e.code, e.reason, "the health check")) from None
  except (urllib.error.URLError, OSError) as e:
    reason = getattr(e, "reason", e)
    raise SubmitError(f"Cannot reach Kubeflow Pipelines at {host}: {reason}.") from None


def submit(spec_file: str, host: str, pipeline_root: Optional[str] = None,
           experiment: str = "Default", run_name: Optional[str] = None,
           namespace: Optional[str] = None, token_path: Optional[str] = None,
           arguments: Optional[dict] = None) -> str:
  """Starts a run of SPEC_FILE in EXPERIMENT (created when missing); returns the run's URL.

  Raises:
    SubmitError: unreachable host, 401/403, 404 or any other refusal, in one line.
  """
  import kfp
  from kfp.client import set_volume_credentials
  import kfp_server_api
  import urllib3
  if not host.startswith(("http://", "https://")):
    raise SubmitError(f"--host {host!r} must start with http:// or https://.")
  token_file = _token_path(token_path)
  _check_server(host, token_file)
  credentials = (set_volume_credentials.ServiceAccountTokenVolumeCredentials(path=token_file)
                 if token_file else None)
  what = "the run"
  try:
    client = kfp.Client(host=host, namespace=namespace or "kubeflow", credentials=credentials)
    result = client.create_run_from_pipeline_package(
        spec_file, arguments=arguments or {}, run_name=run_name, experiment_name=experiment,
        namespace=namespace, pipeline_root=pipeline_root)
  except kfp_server_api.ApiException as e:
    raise SubmitError(_describe_status(host, e.status, e.reason, what)) from None
  except (urllib3.exceptions.HTTPError, OSError) as e:
    raise SubmitError(f"Cannot reach Kubeflow Pipelines at {host}: {e}.") from None
  return f"{host.rstrip('/')}/#/runs/details/{result.run_id}"
