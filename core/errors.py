"""The project's errors, the one line each ends a command with, and the exit codes they map to.

Exit codes of every command (`mnist-tfx ...`, `python -m serving ...`, the Kubeflow entrypoint):
  0  success;
  1  an internal failure, or a service the command talks to failed or refused (ServiceError);
  2  bad input the user can fix (PipelineInputError: a file, a setting, a model that cannot ship).
No TensorFlow or TFX import.
"""

import re
import sys
import traceback
from typing import Optional

EXIT_OK = 0
EXIT_INTERNAL_FAILURE = 1
EXIT_BAD_INPUT = 2
# What network clients put in their messages and no user needs: "<urllib3.connection.HTTPConnection
# object at 0x7f86800fabc0>: ".
_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*")


class PipelineInputError(ValueError):
  """Bad input in the user's terms: the message names the file, setting or model and the problem."""


class ServiceError(RuntimeError):
  """A server or service failed or refused (unreachable, not authorized, an error it answered);
  the message says which and what it answered, in one line."""


def exit_code(error: BaseException) -> int:
  """EXIT_BAD_INPUT for a PipelineInputError, else EXIT_INTERNAL_FAILURE."""
  return EXIT_BAD_INPUT if isinstance(error, PipelineInputError) else EXIT_INTERNAL_FAILURE


def error_line(error: BaseException, what_failed: str, details: Optional[str] = None) -> str:
  """The one line a failed command ends with: what failed, why, and where the details are.

  The cause is the exception's first line plus the indented lines right below it (the list an
  error such as DataAnomaliesError gives), joined with "; "; anything after (e.g. a compiler log)
  stays in the log file. An error that is neither bad input nor a ServiceError is called an
  internal error, with its type.
  """
  lines = str(error).splitlines() or [type(error).__name__]
  cause = [lines[0].strip()]
  for line in lines[1:]:
    if not line[:1].isspace():
      break
    cause.append(line.strip())
  text = "; ".join(part for part in cause if part).replace(":;", ":")
  if not isinstance(error, (PipelineInputError, ServiceError)):
    text = f"internal error, {type(error).__name__}: {text}"
  return f"{what_failed} failed: {text}" + (f" (details: {details})" if details else "")


def report(error: BaseException, what_failed: str, details: Optional[str] = None) -> int:
  """Prints `error_line` to stderr, preceded by the traceback for an internal error (there is no
  log file to hold it), and returns the exit code."""
  if not isinstance(error, (PipelineInputError, ServiceError)) and details is None:
    traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
  print(error_line(error, what_failed, details), file=sys.stderr, flush=True)
  return exit_code(error)


def connection_failure_reason(error: BaseException) -> str:
  """Why a connection failed, in the operating system's words: the reason text (strerror, e.g.
  "connection refused", "name or service not known") of the first OSError found under the client
  library's wrappers (urllib3's NewConnectionError and MaxRetryError, botocore's
  EndpointConnectionError: their `reason`, `__cause__` and `__context__`); else the error's first
  line without the object reprs those wrappers put in it."""
  seen = set()
  pending = [error]
  while pending:
    current = pending.pop(0)
    if not isinstance(current, BaseException) or id(current) in seen:
      continue
    seen.add(id(current))
    if isinstance(current, OSError) and current.strerror:
      return current.strerror[:1].lower() + current.strerror[1:]
    pending += [getattr(current, "reason", None), current.__cause__, current.__context__]
  text = _OBJECT_REPR.sub("", (str(error).splitlines() or [""])[0]).strip()
  return text or type(error).__name__
