"""AnomaliesGate on the anomalies the real ExampleValidator found in real slices."""

import logging

import pytest

from components.anomalies_gate import constants
from components.anomalies_gate import executor


def run_gate(anomalies, **exec_properties) -> None:
  executor.Executor().Do({constants.ANOMALIES_KEY: [anomalies]}, {}, exec_properties)


def test_gate_opens_on_clean_data(validated_slices, caplog):
  _, anomalies = validated_slices["unshifted"]
  with caplog.at_level(logging.INFO):
    run_gate(anomalies)
  assert "No data anomalies" in caplog.text


@pytest.mark.parametrize("allow", [None, 0, "False", "off", "no"])
def test_gate_closes_on_anomalies_naming_them(validated_slices, allow):
  _, anomalies = validated_slices["inverted"]
  params = {} if allow is None else {constants.ALLOW_ANOMALIES_KEY: allow}
  with pytest.raises(executor.DataAnomaliesError,
                     match=r"(?s)found 1 data anomaly; refusing to train \(set "
                     r"allow_anomalies=True to override\):.*split eval, feature image: High "
                     "approximate Jensen-Shannon"):
    run_gate(anomalies, **params)


@pytest.mark.parametrize("allow", [1, True, "True", "yes", "on"])
def test_allow_anomalies_trains_anyway_and_logs_them(validated_slices, allow, caplog):
  _, anomalies = validated_slices["contrast_90"]
  with caplog.at_level(logging.WARNING):
    run_gate(anomalies, **{constants.ALLOW_ANOMALIES_KEY: allow})
  assert "Data anomalies allowed by allow_anomalies=True" in caplog.text
  assert "split eval, feature image" in caplog.text


def test_allow_anomalies_that_is_not_a_boolean_is_an_error(validated_slices):
  _, anomalies = validated_slices["inverted"]
  with pytest.raises(ValueError, match="allow_anomalies must be a boolean"):
    run_gate(anomalies, **{constants.ALLOW_ANOMALIES_KEY: "sometimes"})
