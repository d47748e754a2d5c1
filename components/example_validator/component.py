"""ExampleValidator that also reports skew between each split and the train split."""

from tfx.components import ExampleValidator as TfxExampleValidator
from tfx.dsl.components.base import executor_spec

from components.example_validator import executor


class ExampleValidator(TfxExampleValidator):
  """TFX's ExampleValidator (same spec and outputs) with the schema's skew comparators applied."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
