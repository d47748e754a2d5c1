"""EdgeTpuPusher: pushes the blessed full-int8 TFLite model, compiled for the Edge TPU if possible.

TFX's Pusher copies a SavedModel for TF Serving; a Coral device needs the int8 TFLite model the
evaluator blessed, checked against the Edge TPU's operator rules and compiled by edgetpu_compiler.
"""

import json
from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from components.pusher import constants
from components.pusher import edgetpu_compiler
from components.pusher import edgetpu_package
from components.pusher import executor
from core import contract


class EdgeTpuPusherSpec(types.ComponentSpec):
  """Inputs, outputs and parameters of EdgeTpuPusher."""
  PARAMETERS = {
      constants.PUSH_DESTINATION_KEY: component_spec.ExecutionParameter(type=str),
      constants.COMPILER_PATH_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      constants.COMPILER_FLAGS_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      constants.REQUIRE_EDGETPU_KEY: component_spec.ExecutionParameter(type=bool, optional=True),
      constants.COMPILER_TIMEOUT_SECONDS_KEY:
          component_spec.ExecutionParameter(type=int, optional=True),
      constants.REQUIRE_FULL_EDGETPU_MAPPING_KEY:
          component_spec.ExecutionParameter(type=bool, optional=True),
      constants.REQUIRE_EDGETPU_ON_CHIP_KEY:
          component_spec.ExecutionParameter(type=bool, optional=True),
      constants.IO_DTYPE_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      constants.MIN_RUNTIME_VERSION_KEY:
          component_spec.ExecutionParameter(type=int, optional=True),
  }
  INPUTS = {
      standard_component_specs.MODEL_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.Model),
      standard_component_specs.MODEL_BLESSING_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing),
      standard_component_specs.EVALUATION_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
  }
  OUTPUTS = {
      standard_component_specs.PUSHED_MODEL_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.PushedModel),
  }


class EdgeTpuPusher(base_component.BaseComponent):
  """Pushes a blessed model's int8 TFLite bytes (and Edge TPU binary) to DEST/<version>/.

  Outputs:
    pushed_model: PushedModel with TFX's `pushed` (1/0), `pushed_version`, `pushed_destination`,
      plus `edgetpu_compiled` (1/0), `edgetpu_status`, `int8_tflite_sha256`, `io_dtype`, and
      `reason` when not pushed; its uri holds a copy of the pushed version (model.tflite,
      labels.txt, model.json, and the compiler's output when it ran).
  """

  SPEC_CLASS = EdgeTpuPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self,
               model: types.BaseChannel,
               model_blessing: types.BaseChannel,
               push_destination: str,
               evaluation: Optional[types.BaseChannel] = None,
               compiler_path: Optional[str] = None,
               compiler_flags: Sequence[str] = constants.DEFAULT_COMPILER_FLAGS,
               require_edgetpu: bool = constants.DEFAULT_REQUIRE_EDGETPU,
               compiler_timeout_seconds: int = constants.DEFAULT_COMPILER_TIMEOUT_SECONDS,
               require_full_edgetpu_mapping: bool = (
                   constants.DEFAULT_REQUIRE_FULL_EDGETPU_MAPPING),
               require_edgetpu_on_chip: bool = constants.DEFAULT_REQUIRE_EDGETPU_ON_CHIP,
               io_dtype: str = contract.DEFAULT_IO_DTYPE,
               min_runtime_version: int = constants.DEFAULT_MIN_RUNTIME_VERSION):
    """Constructs the component.

    Args:
      model: Model channel from the Trainer (SavedModel with the signatures of core/contract.py).
      model_blessing: ModelBlessing channel from Int8Evaluator (`blessed`, `int8_tflite_sha256`,
        `reason`); only blessed models are pushed, and only the exact bytes it blessed.
      push_destination: directory (any fileio path) under which versions 1, 2, ... are created.
      evaluation: optional ModelEvaluation channel from Int8Evaluator; its metrics go into
        model.json.
      compiler_path: edgetpu_compiler to run; default: `edgetpu_compiler` on PATH, and when there
        is none the CPU int8 model is pushed with a warning.
      compiler_flags: extra edgetpu_compiler flags (e.g. ["-a"]); not `-m`, which is
        `min_runtime_version`.
      require_edgetpu: fail instead of pushing a CPU-only model when no compiler is found.
      compiler_timeout_seconds: kill the compiler and fail after this many seconds.
      require_full_edgetpu_mapping: fail when not every operation maps to the Edge TPU (by the
        compatibility check, and by the compiler's log when it runs).
      require_edgetpu_on_chip: fail when the compiler's log reports parameters streamed from
        off-chip memory or more than one Edge TPU subgraph.
      io_dtype: the int8 model's input and output type, one of contract.IO_DTYPES; the
        Int8Evaluator's setting, since only the bytes it blessed are pushed.
      min_runtime_version: the oldest Edge TPU runtime (libedgetpu) the compiled model must run
        on, passed to the compiler as `-m`; at least 10, and 12 for int8 inputs and outputs.

    Raises:
      ValueError: an empty push_destination, a non-positive compiler_timeout_seconds,
        compiler_flags that are not strings or that set `-m`, an unknown io_dtype or a
        min_runtime_version the model cannot have (checked here, when the pipeline is built, as
        TFX's Pusher checks its destination).
    """
    if not push_destination:
      raise ValueError("EdgeTpuPusher needs a push_destination (the directory of versions 1, 2...)")
    if compiler_timeout_seconds <= 0:
      raise ValueError(f"compiler_timeout_seconds must be positive, got {compiler_timeout_seconds}")
    if isinstance(compiler_flags, str) or not all(isinstance(f, str) for f in compiler_flags):
      raise ValueError(f"compiler_flags must be a sequence of strings, got {compiler_flags!r}")
    edgetpu_compiler.check_flags(compiler_flags)
    problem = edgetpu_package.runtime_version_problem(min_runtime_version,
                                                      [contract.check_io_dtype(io_dtype)])
    if problem:
      raise ValueError(f"min_runtime_version {min_runtime_version}: {problem}")
    spec = EdgeTpuPusherSpec(
        model=model,
        model_blessing=model_blessing,
        evaluation=evaluation,
        push_destination=push_destination,
        compiler_path=compiler_path or "",
        compiler_flags=json.dumps(list(compiler_flags)),
        require_edgetpu=require_edgetpu,
        compiler_timeout_seconds=compiler_timeout_seconds,
        require_full_edgetpu_mapping=require_full_edgetpu_mapping,
        require_edgetpu_on_chip=require_edgetpu_on_chip,
        io_dtype=io_dtype,
        min_runtime_version=min_runtime_version,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel))
    super().__init__(spec=spec)
