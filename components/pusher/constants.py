"""EdgeTpuPusher's parameter keys and defaults, pushed files and PushedModel properties.

No TFX or TensorFlow import: the component, the executor, the pipeline, the command line, the run
summary and serving read their names and defaults from here.
"""

from typing import Tuple

# Execution parameters and their defaults (the component's defaults; `mnist-tfx --help` shows
# these).
PUSH_DESTINATION_KEY = "push_destination"
COMPILER_PATH_KEY = "compiler_path"
COMPILER_FLAGS_KEY = "compiler_flags"
DEFAULT_COMPILER_FLAGS: Tuple[str, ...] = ()
REQUIRE_EDGETPU_KEY = "require_edgetpu"
DEFAULT_REQUIRE_EDGETPU = False
COMPILER_TIMEOUT_SECONDS_KEY = "compiler_timeout_seconds"
DEFAULT_COMPILER_TIMEOUT_SECONDS = 600
REQUIRE_FULL_EDGETPU_MAPPING_KEY = "require_full_edgetpu_mapping"
DEFAULT_REQUIRE_FULL_EDGETPU_MAPPING = True

# PushedModel custom properties: TFX Pusher's three, plus the Edge TPU outcome.
PUSHED_KEY = "pushed"
PUSHED_VERSION_KEY = "pushed_version"
PUSHED_DESTINATION_KEY = "pushed_destination"
REASON_KEY = "reason"
EDGETPU_COMPILED_KEY = "edgetpu_compiled"
EDGETPU_STATUS_KEY = "edgetpu_status"
# 1 when this push published a new version; 0 when the latest version already held the same files
# (`pushed_version` / `pushed_destination` then name that version and `reason` says so).
NEW_VERSION_PUBLISHED_KEY = "new_version_published"


def identical_reason(version: int) -> str:
  """The PushedModel `reason` when nothing new was published (the run summary prints it)."""
  return f"nothing new pushed: identical to version {version}"
