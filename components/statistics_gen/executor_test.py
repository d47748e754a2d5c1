"""StatisticsGen's HTML report, from real TFDV statistics of a real slice."""

import base64
import re

from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils

from components.statistics_gen import constants


def embedded_statistics(html: str) -> statistics_pb2.DatasetFeatureStatisticsList:
  """The statistics the Facets Overview element of the report renders."""
  [encoded] = re.findall(r'<facets-overview proto-input="([A-Za-z0-9+/=]+)">', html)
  return statistics_pb2.DatasetFeatureStatisticsList.FromString(base64.b64decode(encoded))


def test_report_shows_train_beside_eval_with_the_artifact_statistics(validated_slices):
  statistics, _ = validated_slices["inverted"]
  with open(constants.html_report_path(statistics.uri)) as f:
    html = f.read()

  shown = embedded_statistics(html)
  assert [dataset.name for dataset in shown.datasets] == ["train", "eval"]  # Train on the left.
  for dataset in shown.datasets:
    stored = stats_artifact_utils.load_statistics(statistics, dataset.name).proto().datasets[0]
    assert dataset.num_examples == stored.num_examples
    assert {f.path.step[0] for f in dataset.features} == {"image", "label"}
  counts = {d.name: d.num_examples for d in shown.datasets}
  assert counts == {"train": 2000, "eval": 500}
  # The inverted eval pixels are visible in the report: mean pixel ~33 in train, ~222 in eval.
  means = {d.name: next(f.num_stats.mean for f in d.features if f.path.step[0] == "image")
           for d in shown.datasets}
  assert means["train"] < 50 < 200 < means["eval"]
  assert artifact_utils.decode_split_names(statistics.split_names) == ["train", "eval"]
