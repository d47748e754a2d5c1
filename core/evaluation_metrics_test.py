"""metrics.json's baseline: the deployed version compared with, and older files still read."""

import pydantic
import pytest

from core import evaluation_metrics

INT8 = {"accuracy": 0.9, "correct": 9, "log_loss": 0.1, "precision": [0.9] * 10,
        "recall": [0.9] * 10, "confusion_matrix": [[0] * 10] * 10, "tflite_file": "m.tflite",
        "tflite_sha256": "0" * 64, "model_size_bytes": 1, "latency_ms": {"p50": 1, "p99": 2},
        "batched_images_per_second": 1.0, "batch_size": 1, "batched_mismatches": 0}
DEPLOYED = {"destination": "s3://b/pushed_models", "version": 3, "tflite_sha256": "1" * 64,
            "source_model_uri": "s3://b/root/Trainer/model"}
# What the evaluator wrote when the baseline was the last blessed model in ML Metadata: pushed
# versions keep it in their model.json, which serving and the evaluator must still read.
OLDER = {"uri": "/root/Trainer/model/7", "id": 7, "saved_model_path": "/root/Format-Serving"}


def test_a_baseline_is_a_deployed_version_and_older_files_still_read():
  baseline = evaluation_metrics.BaselineMetrics.model_validate({"deployed": DEPLOYED,
                                                                "int8": INT8})
  assert baseline.deployed.version == 3 and baseline.model is None
  older = evaluation_metrics.BaselineMetrics.model_validate({"model": OLDER, "int8": INT8})
  assert older.model.id == 7 and older.deployed is None


@pytest.mark.parametrize("names", [{}, {"deployed": DEPLOYED, "model": OLDER}])
def test_a_baseline_names_exactly_one_model(names):
  with pytest.raises(pydantic.ValidationError, match="a baseline is either 'deployed'"):
    evaluation_metrics.BaselineMetrics.model_validate({**names, "int8": INT8})
