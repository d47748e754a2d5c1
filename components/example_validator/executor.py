"""ExampleValidator executor that also checks every split for skew against the train split."""

import os
from typing import Any, Dict, List, Optional

from tensorflow_data_validation.api import validation_api
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import types
from tfx.components.example_validator import executor as tfx_example_validator_executor
from tfx.components.example_validator import labels
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import writer_utils

from core import contract


class Executor(tfx_example_validator_executor.Executor):
  """Validates each split against the schema, and its distributions against the train split.

  TFX's ExampleValidator checks each split against the schema alone, so the schema's
  `skew_comparator`s (e.g. the L-infinity threshold on `label`) would never fire. Here every split's
  statistics are compared with the train split's: an eval split that is nearly all one digit, or
  misses a class, is reported as an anomaly. (Train compared with itself has distance 0.)
  """

  _reference_statistics: Optional[statistics_pb2.DatasetFeatureStatisticsList] = None

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]):
    statistics = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.STATISTICS_KEY])
    if contract.TRAIN_SPLIT in artifact_utils.decode_split_names(statistics.split_names):
      self._reference_statistics = stats_artifact_utils.load_statistics(
          statistics, contract.TRAIN_SPLIT).proto()
    return super().Do(input_dict, output_dict, exec_properties)

  def _Validate(self, inputs: Dict[str, Any],
                outputs: Dict[str, Any]) -> anomalies_pb2.Anomalies:
    anomalies = validation_api.validate_statistics(
        statistics=inputs[standard_component_specs.STATISTICS_KEY],
        schema=inputs[standard_component_specs.SCHEMA_KEY],
        serving_statistics=self._reference_statistics,
        custom_validation_config=inputs.get(
            standard_component_specs.CUSTOM_VALIDATION_CONFIG_KEY))
    writer_utils.write_anomalies(
        os.path.join(outputs[labels.SCHEMA_DIFF_PATH],
                     tfx_example_validator_executor.DEFAULT_FILE_NAME),
        anomalies)
    return anomalies
