"""StatisticsGen that also writes an HTML report (TFDV's own Facets rendering) into its artifact."""

from tfx.components import StatisticsGen as TfxStatisticsGen
from tfx.dsl.components.base import executor_spec

from components.statistics_gen import executor


class StatisticsGen(TfxStatisticsGen):
  """TFX's StatisticsGen, same spec and outputs, plus `statistics.html` in the artifact's uri."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
