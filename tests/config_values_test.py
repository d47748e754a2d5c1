"""The one strict boolean parser, and every place a boolean arrives as text."""

import dataclasses
import json

import pytest

from components.anomalies_gate import component as anomalies_gate_component
from components.anomalies_gate import constants as anomalies_gate_constants
from core import config_values
from mnist_tfx import cli
from pipeline import options
from trainer_module import hparams as hparams_lib

TRUE_TEXTS = ["true", "True", "TRUE", "1", "yes", "Yes", "on", " on "]
FALSE_TEXTS = ["false", "False", "0", "no", "NO", "off", "Off"]
BAD_VALUES = ["", "flase", "y", "2", "none", "null", 2, -1, 0.5, None, [], {}]


@pytest.mark.parametrize("text", TRUE_TEXTS)
def test_true_texts(text):
  assert config_values.parse_bool("flag", text) is True


@pytest.mark.parametrize("text", FALSE_TEXTS)
def test_false_texts(text):
  assert config_values.parse_bool("flag", text) is False


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), (1, True), (0, False)])
def test_bools_and_json_numbers(value, expected):
  assert config_values.parse_bool("flag", value) is expected


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_anything_else_is_an_error_naming_the_key(value):
  with pytest.raises(ValueError, match=r"^my_key must be a boolean .*got "):
    config_values.parse_bool("my_key", value)


def train_config_from_command_line(*pairs: str):
  """The trainer's custom_config as `mnist-tfx run --train-config KEY=VALUE ...` builds it."""
  argv = ["run"] + [arg for pair in pairs for arg in ("--train-config", pair)]
  return options.pipeline_options(cli.build_parser().parse_args(argv))["train_config"]


@pytest.mark.parametrize("text, expected", [("False", False), ("no", False), ("off", False),
                                            ("false", False), ("0", False), ("True", True),
                                            ("on", True), ("true", True)])
def test_keras_baseline_quantize_from_the_command_line(text, expected):
  """`--train-config quantize=False` reached the Keras baseline as the truthy string "False"."""
  from trainer_module import keras_baseline  # Imports tf_keras and tfmot.
  config = train_config_from_command_line(f"quantize={text}")
  quantize = keras_baseline.parse_config(config).quantize
  assert quantize is expected
  from_json = json.loads(json.dumps(config))  # Kubeflow's JSON.
  assert keras_baseline.parse_config(from_json).quantize is expected


def test_keras_baseline_quantize_rejects_other_text():
  from trainer_module import keras_baseline
  with pytest.raises(ValueError, match="quantize must be a boolean"):
    keras_baseline.parse_config(train_config_from_command_line("quantize=maybe"))


@dataclasses.dataclass(frozen=True)
class _HParamsWithFlag(hparams_lib.HParams):
  """HParams plus a boolean field, as a trainer option would add one (HParams has none yet)."""
  augment: bool = True


@pytest.mark.parametrize("text, expected", [("False", False), ("off", False), ("no", False),
                                            ("0", False), ("yes", True), ("true", True)])
def test_hparams_bool_fields_from_text(text, expected):
  hp = _HParamsWithFlag.from_config(train_config_from_command_line(f"augment={text}"))
  assert hp.augment is expected


def test_hparams_bool_field_rejects_other_text():
  with pytest.raises(ValueError, match="augment=.*augment must be a boolean"):
    _HParamsWithFlag.from_config({"augment": "nope"})


@pytest.mark.parametrize("value, expected", [("False", 0), ("off", 0), ("true", 1), (True, 1),
                                             (False, 0), (None, None)])
def test_anomalies_gate_allow_anomalies(value, expected):
  from tfx.types import channel
  from tfx.types import standard_artifacts
  anomalies = channel.Channel(type=standard_artifacts.ExampleAnomalies)
  gate = anomalies_gate_component.AnomaliesGate(anomalies=anomalies, allow_anomalies=value)
  assert gate.exec_properties.get(anomalies_gate_constants.ALLOW_ANOMALIES_KEY) == expected


def test_anomalies_gate_rejects_other_text():
  from tfx.types import channel
  from tfx.types import standard_artifacts
  anomalies = channel.Channel(type=standard_artifacts.ExampleAnomalies)
  with pytest.raises(ValueError, match="allow_anomalies must be a boolean"):
    anomalies_gate_component.AnomaliesGate(anomalies=anomalies, allow_anomalies="sometimes")
