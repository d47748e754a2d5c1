"""EdgeTpuPusher's parameter keys and defaults, pushed files and PushedModel properties.

No TFX or TensorFlow import: the component, the executor, the pipeline, the command line, the run
summary and serving read their names and defaults from here.
"""

from typing import Tuple

from components.evaluator import constants as evaluator_constants

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
# Fail when edgetpu_compiler reports parameters streamed from off-chip memory or more than one
# Edge TPU subgraph, what makes a compiled model slow (google-coral/edgetpu#427, #572).
REQUIRE_EDGETPU_ON_CHIP_KEY = "require_edgetpu_on_chip"
DEFAULT_REQUIRE_EDGETPU_ON_CHIP = True
# The int8 model's input and output type (core.contract.IO_DTYPES): the evaluator's setting of the
# same name, since the pusher ships only the bytes the evaluator judged.
IO_DTYPE_KEY = evaluator_constants.IO_DTYPE_KEY
# The oldest Edge TPU runtime (libedgetpu) the compiled model must run on: edgetpu_compiler's
# `-m`. edgetpu_compiler 16 targets runtime 14 by default, and devices with runtime 13 (libedgetpu
# before its "grouper" release) then fail with "Package requires runtime version (14), which is
# newer than this runtime version (13)" (google-coral/edgetpu#435, pycoral#104); 13 runs on both,
# and this model needs nothing newer (runtime 14 added variable tensors, libedgetpu
# api/runtime_version.h, where int8 inputs and outputs need 12 or later).
MIN_RUNTIME_VERSION_KEY = "min_runtime_version"
DEFAULT_MIN_RUNTIME_VERSION = 13

# PushedModel custom properties: TFX Pusher's three, plus the Edge TPU outcome.
PUSHED_KEY = "pushed"
PUSHED_VERSION_KEY = "pushed_version"
PUSHED_DESTINATION_KEY = "pushed_destination"
REASON_KEY = "reason"
EDGETPU_COMPILED_KEY = "edgetpu_compiled"
EDGETPU_STATUS_KEY = "edgetpu_status"
# IO_DTYPE_KEY (above) also names the property holding the pushed model's I/O type, e.g. "uint8".
# 1 when this push published a new version; 0 when the latest version already held the same files
# (`pushed_version` / `pushed_destination` then name that version and `reason` says so).
NEW_VERSION_PUBLISHED_KEY = "new_version_published"


def identical_reason(version: int) -> str:
  """The PushedModel `reason` when nothing new was published (the run summary prints it)."""
  return f"nothing new pushed: identical to version {version}"
