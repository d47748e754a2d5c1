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
from components.pusher import executor


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
      plus `edgetpu_compiled` (1/0), `edgetpu_status`, `int8_tflite_sha256`, and `reason` when not
      pushed; its uri holds a copy of the pushed version.
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
                   constants.DEFAULT_REQUIRE_FULL_EDGETPU_MAPPING)):
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
      compiler_flags: extra edgetpu_compiler flags (e.g. ["-m", "13"]).
      require_edgetpu: fail instead of pushing a CPU-only model when no compiler is found.
      compiler_timeout_seconds: kill the compiler and fail after this many seconds.
      require_full_edgetpu_mapping: fail when not every operation maps to the Edge TPU (by the
        compatibility check, and by the compiler's log when it runs).

    Raises:
      ValueError: an empty push_destination, a non-positive compiler_timeout_seconds, or
        compiler_flags that are not strings (checked here, when the pipeline is built, as TFX's
        Pusher checks its destination).
    """
    if not push_destination:
      raise ValueError("EdgeTpuPusher needs a push_destination (the directory of versions 1, 2...)")
    if compiler_timeout_seconds <= 0:
      raise ValueError(f"compiler_timeout_seconds must be positive, got {compiler_timeout_seconds}")
    if isinstance(compiler_flags, str) or not all(isinstance(f, str) for f in compiler_flags):
      raise ValueError(f"compiler_flags must be a sequence of strings, got {compiler_flags!r}")
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
        pushed_model=types.Channel(type=standard_artifacts.PushedModel))
    super().__init__(spec=spec)
