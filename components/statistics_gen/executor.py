"""StatisticsGen executor that also renders the statistics as HTML next to the artifact."""

from typing import Any, Dict, List

from absl import logging
from tensorflow_data_validation.utils import display_util
from tfx import types
from tfx.components.statistics_gen import executor as tfx_statistics_gen_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

from components.statistics_gen import constants
from core import contract


class Executor(tfx_statistics_gen_executor.Executor):
  """Computes statistics like TFX's StatisticsGen, then writes TFDV's Facets HTML report.

  The report compares the train and eval splits side by side when both exist, so a user can open the
  data in a browser without a notebook.
  """

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    super().Do(input_dict, output_dict, exec_properties)
    statistics = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.STATISTICS_KEY])
    splits = artifact_utils.decode_split_names(statistics.split_names)
    # Train on the left, eval on the right; any other splits follow in their own order.
    ordered = sorted(splits, key=lambda s: (s != contract.TRAIN_SPLIT, s != contract.EVAL_SPLIT))
    views = [stats_artifact_utils.load_statistics(statistics, split).proto() for split in ordered]
    html = display_util.get_statistics_html(
        views[0], views[1] if len(views) > 1 else None, lhs_name=ordered[0],
        rhs_name=ordered[1] if len(ordered) > 1 else "")
    with fileio.open(constants.html_report_path(statistics.uri), "w") as f:
      f.write(html)
    logging.info("Statistics report written to %s", constants.html_report_path(statistics.uri))
