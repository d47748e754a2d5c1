"""create_pipeline: the wiring, and bad settings refused when the pipeline is built."""

import pytest

from core import paths
from pipeline import pipeline as pipeline_def


def _create(tmp_path, **overrides):
  settings = {"pipeline_root": str(tmp_path / "root"), "data_dir": str(tmp_path / "data"),
              **overrides}
  return pipeline_def.create_pipeline(**settings)


def test_wires_every_component_with_the_gate_before_training(tmp_path):
  pipeline = _create(tmp_path)
  components = {component.id: component for component in pipeline.components}
  assert set(components) == {
      "MnistExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "AnomaliesGate",
      "Trainer", "Int8Evaluator", "EdgeTpuPusher"}
  assert "AnomaliesGate" in {node.id for node in components["Trainer"].upstream_nodes}
  # The evaluator's baseline is what the pusher deploys: one destination for both.
  destination = str(tmp_path / "root" / paths.PUSHED_MODELS_DIR)
  for node_id in ("Int8Evaluator", "EdgeTpuPusher"):
    assert components[node_id].exec_properties["push_destination"] == destination
  assert set(pipeline_def.ALWAYS_RUN) <= set(components)


@pytest.mark.parametrize("overrides, message", [
    ({"trainer": "sklearn"}, r"Unknown trainer 'sklearn'"),
    ({"data_dir": ""}, r"MnistExampleGen needs an input_dir"),
    ({"min_int8_accuracy": 99.0}, r"min_int8_accuracy is a fraction and must be in \[0, 1\], "
                                  r"got 99.0"),
    ({"max_quantization_drop": -0.1}, r"max_quantization_drop is a fraction"),
    ({"baseline_tolerance": 2}, r"baseline_tolerance is a fraction"),
    ({"compiler_timeout_seconds": 0}, r"compiler_timeout_seconds must be positive, got 0"),
    ({"compiler_flags": "-m 13"}, r"compiler_flags must be a sequence of strings"),
    ({"train_config": {"foo": 1}}, r"Unknown trainer hyperparameter\(s\) \['foo'\]; known: "
                                   r"\[.*'preset'.*\]"),
    ({"train_config": {"learning_rate": "abc"}}, r"learning_rate='abc' is not a float"),
    ({"trainer": "keras-baseline", "train_config": {"quantize": "maybe"}},
     r"quantize must be a boolean"),
], ids=lambda value: str(value)[:40])
def test_bad_settings_fail_when_the_pipeline_is_built(tmp_path, overrides, message):
  with pytest.raises(ValueError, match=message):
    _create(tmp_path, **overrides)
  assert not (tmp_path / "root").exists()  # Nothing ran, nothing was written.
