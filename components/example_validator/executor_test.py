"""ExampleValidator's skew check on real slices: real TFDV statistics and the pipeline's schema."""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils

from components.example_validator import anomalies as anomalies_lib


def read_split(anomalies, split: str) -> anomalies_pb2.Anomalies:
  path = os.path.join(artifact_utils.get_split_uri([anomalies], split),
                      anomalies_lib.ANOMALIES_FILE_NAME)
  with open(path, "rb") as f:
    return anomalies_pb2.Anomalies.FromString(f.read())


def image_skew(anomalies) -> float:
  """The Jensen-Shannon divergence TFDV measured on `image` between eval and train."""
  proto = read_split(anomalies, "eval")
  [info] = [i for i in proto.drift_skew_info if list(i.path.step) == ["image"]]
  [measurement] = info.skew_measurements
  assert measurement.type == anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE
  return measurement.value


def test_unshifted_slice_has_no_anomalies(validated_slices):
  _, anomalies = validated_slices["unshifted"]
  assert anomalies_lib.describe_anomalies(anomalies) == []
  assert image_skew(anomalies) < 0.001  # Threshold 0.01 (schema.pbtxt).


def test_inverted_eval_pixels_are_an_image_skew_anomaly(validated_slices):
  _, anomalies = validated_slices["inverted"]
  found = anomalies_lib.describe_anomalies(anomalies)
  assert len(found) == 1, found
  assert found[0].startswith("split eval, feature image: High approximate Jensen-Shannon "
                             "divergence between training and serving")
  assert image_skew(anomalies) > 0.3


def test_ten_percent_less_contrast_is_an_image_skew_anomaly(validated_slices):
  _, anomalies = validated_slices["contrast_90"]
  found = anomalies_lib.describe_anomalies(anomalies)
  assert [line.split(":")[0] for line in found] == ["split eval, feature image"]
  assert image_skew(anomalies) > 0.05


def test_train_split_is_compared_with_itself(validated_slices):
  _, anomalies = validated_slices["inverted"]
  assert not read_split(anomalies, "train").anomaly_info
