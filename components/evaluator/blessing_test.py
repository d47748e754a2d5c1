"""The blessing rule: each check can fail on its own, and the reason names the failing one."""

import pytest

from components.evaluator import blessing

THRESHOLDS = blessing.Thresholds(min_int8_accuracy=0.99, max_quantization_drop=0.005,
                                 baseline_tolerance=0.002)


@pytest.mark.parametrize("int8_accuracy, drop, baseline, blessed, failed_check", [
    (0.9912, 0.0010, None, True, None),
    (0.9900, 0.0050, 0.9920, True, None),  # Every bound is inclusive.
    (0.9899, 0.0010, None, False, "int8 accuracy 0.9899 < 0.9900"),
    (0.9912, 0.0051, None, False, "quantization drop 0.51 pp > 0.50 pp"),
    (0.9912, 0.0010, 0.9935, False,
     "int8 accuracy 0.9912 < baseline int8 accuracy 0.9935 - tolerance 0.0020 = 0.9915"),
])
def test_decide(int8_accuracy, drop, baseline, blessed, failed_check):
  result, reason = blessing.decide(int8_accuracy, drop, baseline, THRESHOLDS)
  assert result is blessed
  assert reason.startswith("blessed: " if blessed else "not blessed: ")
  if failed_check:
    assert f"FAILED {failed_check}" in reason
    assert reason.count("FAILED") == 1
  else:
    assert "FAILED" not in reason
  assert ("no baseline" in reason) == (baseline is None)


def test_reason_names_the_baseline_and_says_why_there_is_none():
  _, reason = blessing.decide(0.9912, 0.001, 0.9935, THRESHOLDS,
                              baseline_name="deployed version 3")
  assert ("FAILED int8 accuracy 0.9912 < baseline (deployed version 3) int8 accuracy 0.9935 - "
          "tolerance 0.0020 = 0.9915") in reason
  _, reason = blessing.decide(0.9912, 0.001, None, THRESHOLDS,
                              no_baseline_note="no baseline (nothing deployed in gs://b/m yet)")
  assert reason.endswith(", no baseline (nothing deployed in gs://b/m yet)")
