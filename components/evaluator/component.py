"""Int8Evaluator: evaluates and blesses the full-int8 TFLite model that the pusher ships.

TFX's Evaluator judges the float SavedModel; on the Edge TPU the int8 conversion runs, and
quantization can cost accuracy. This component evaluates both on the eval split and blesses the
model only on the int8 numbers, compared with what is deployed: the newest verified version in the
push destination (deployed.py), not a Resolver's ML Metadata query, so the pipeline holds only
container tasks and behaves alike on every orchestrator (open-source Kubeflow Pipelines refuses
Resolver tasks).
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from components.evaluator import blessing as blessing_lib
from components.evaluator import constants
from components.evaluator import executor
from core import contract


class Int8EvaluatorSpec(types.ComponentSpec):
  """Inputs, outputs and parameters of Int8Evaluator."""
  PARAMETERS = {
      constants.MIN_INT8_ACCURACY_KEY: component_spec.ExecutionParameter(type=float),
      constants.MAX_QUANTIZATION_DROP_KEY: component_spec.ExecutionParameter(type=float),
      constants.BASELINE_TOLERANCE_KEY: component_spec.ExecutionParameter(type=float),
      constants.EVAL_SPLIT_KEY: component_spec.ExecutionParameter(type=str),
      constants.PUSH_DESTINATION_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      standard_component_specs.EXAMPLES_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.Examples),
      standard_component_specs.MODEL_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.Model),
  }
  OUTPUTS = {
      standard_component_specs.EVALUATION_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation),
      standard_component_specs.BLESSING_KEY:
          component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing),
  }


class Int8Evaluator(base_beam_component.BaseBeamComponent):
  """Evaluates a Trainer's model and its full-int8 TFLite conversion; blesses on the int8 model.

  Its result depends on the push destination, which is no input artifact: run it uncached
  (pipeline.pipeline.ALWAYS_RUN).

  Outputs:
    evaluation: ModelEvaluation holding metrics.json, tensorboard/ and the evaluated
      model_int8.tflite (plus baseline_model_int8.tflite, the deployed version's model.tflite,
      when it was compared).
    blessing: ModelBlessing with `blessed` 1/0, TFX's current_model(_id), baseline_model (the
      deployed version's directory) and `baseline_version` when compared, `int8_tflite_sha256`
      (the bytes the pusher may ship), `blessing_message` (the reason), and a BLESSED or
      NOT_BLESSED marker file.
  """

  SPEC_CLASS = Int8EvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self,
               examples: types.BaseChannel,
               model: types.BaseChannel,
               push_destination: Optional[str] = None,
               min_int8_accuracy: float = blessing_lib.DEFAULT_MIN_INT8_ACCURACY,
               max_quantization_drop: float = blessing_lib.DEFAULT_MAX_QUANTIZATION_DROP,
               baseline_tolerance: float = blessing_lib.DEFAULT_BASELINE_TOLERANCE,
               eval_split: str = contract.EVAL_SPLIT):
    """Constructs the component.

    Args:
      examples: Examples channel (e.g. MnistExampleGen's); the `eval_split` split is evaluated.
      model: Model channel from the Trainer (SavedModel with the signatures of core/contract.py).
      push_destination: the EdgeTpuPusher's destination (any fileio path). Its newest verified
        version is the baseline: the candidate's int8 accuracy must be at least that version's
        int8 accuracy on the same examples minus `baseline_tolerance`. None or an empty
        destination: no comparison.
      min_int8_accuracy: minimum int8 accuracy (fraction) to bless.
      max_quantization_drop: maximum float accuracy minus int8 accuracy (fraction) to bless.
      baseline_tolerance: allowed int8 accuracy shortfall against the baseline (fraction).
      eval_split: name of the split to evaluate on.

    Raises:
      ValueError: a threshold outside [0, 1] (checked when the pipeline is built).
    """
    blessing_lib.Thresholds(min_int8_accuracy, max_quantization_drop, baseline_tolerance)
    spec = Int8EvaluatorSpec(
        examples=examples,
        model=model,
        push_destination=push_destination or "",
        min_int8_accuracy=min_int8_accuracy,
        max_quantization_drop=max_quantization_drop,
        baseline_tolerance=baseline_tolerance,
        eval_split=eval_split,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing))
    super().__init__(spec=spec)
