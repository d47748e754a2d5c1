"""Pipeline names are checked against Kubeflow's rule when the arguments are parsed."""

import os

import pytest

from mnist_tfx import cli
from pipeline import configs

BAD_NAMES = ["MNIST EdgeTPU_v2", "mnist_edgetpu", "-mnist", "mnist.v2", "Mnist", "", "a" * 129,
             "mnist\u00e9"]
GOOD_NAMES = ["mnist-edgetpu", "mnist-edgetpu-v2", "0", "a" * 128]
KUBEFLOW_ARGS = ["kubeflow", "compile", "--image", "gcr.io/p/mnist:1", "--pipeline-root", "gs://b/root",
                 "--data-dir", "gs://b/mnist"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
@pytest.mark.parametrize("command", [["run"], ["tensorboard"], KUBEFLOW_ARGS],
                         ids=lambda command: command[0])
def test_bad_name_is_refused_at_parsing_with_the_name_and_the_rule(command, name, capsys,
                                                                   tmp_path):
  output = str(tmp_path / "spec.yaml")
  extra = ["--output", output] if command[0] == "kubeflow" else []
  with pytest.raises(SystemExit) as exited:
    cli.main([*command, *extra, f"--pipeline-name={name}"])
  assert exited.value.code == 2
  error = capsys.readouterr().err
  assert f"--pipeline-name: pipeline name {name!r} is not allowed" in error
  assert configs.PIPELINE_NAME_RULE in error
  assert not os.path.exists(output)  # Nothing compiled.


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_names_kubeflow_accepts_parse(name):
  args = cli.build_parser().parse_args([*KUBEFLOW_ARGS, "--pipeline-name", name])
  assert args.pipeline_name == name
  assert cli.build_parser().parse_args(["run", "--pipeline-name", name]).pipeline_name == name


def test_create_pipeline_applies_the_same_rule(tmp_path):
  from pipeline import pipeline as pipeline_def
  with pytest.raises(ValueError, match=r"pipeline name 'MNIST EdgeTPU_v2' is not allowed: "
                     r"Kubeflow Pipelines needs \[a-z0-9\]\[a-z0-9-\]\{0,127\}"):
    pipeline_def.create_pipeline(str(tmp_path), str(tmp_path), pipeline_name="MNIST EdgeTPU_v2")


def test_the_rule_is_the_one_tfx_enforces_when_compiling_for_kubeflow():
  """Our rule accepts exactly what TFX's Kubeflow v2 compiler accepts (on these names)."""
  from tfx.orchestration.kubeflow.v2 import pipeline_builder
  for name in GOOD_NAMES:
    pipeline_builder._check_name(name)  # pylint: disable=protected-access
  for name in BAD_NAMES:
    with pytest.raises(ValueError):
      pipeline_builder._check_name(name)  # pylint: disable=protected-access


@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_epochs_below_one_are_refused_at_parsing(epochs, capsys):
  with pytest.raises(SystemExit) as exited:
    cli.build_parser().parse_args(["run", "--epochs", epochs])
  assert exited.value.code == 2
  assert f"--epochs: must be at least 1, got {epochs}" in capsys.readouterr().err
