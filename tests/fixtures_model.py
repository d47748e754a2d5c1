"""Model fixtures: the hand-built QAT CNN trained on the slice and exported (owned by the trainer).

`trained_model_dir` is a reasonable model (well above chance on the slice), `untrained_model_dir`
a deliberately bad one with the same signatures (0 training steps); both are SavedModel dirs with
the three signatures of core/contract.py.
"""

import dataclasses
import functools
import os

import pytest
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from core import contract
from tests import fixtures_data
from tests import mnist_slices
from trainer_module import train

# Small batches and no shift augmentation: two epochs of the 2,000-image slice then learn enough
# (~95 %) in seconds.
SLICE_HPARAMS = {"epochs": 2, "batch_size": 16, "max_shift": 0}


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  serving_model_dir: str
  model_run_dir: str
  result: train.TrainingResult


@functools.lru_cache(maxsize=1)
def slice_eval_digits():
  """(uint8 images [500, 28, 28], labels [500]): the slice's eval split, for scoring models."""
  images, labels = mnist_slices.load_full(contract.EVAL_SPLIT)
  return images[:fixtures_data.SLICE_EVAL], labels[:fixtures_data.SLICE_EVAL]


def split_pattern(examples_dir: str, split: str) -> str:
  """The files of one split of the Examples artifact at `examples_dir`, where TFX puts them."""
  examples = standard_artifacts.Examples()
  examples.uri = examples_dir
  examples.split_names = artifact_utils.encode_split_names([contract.TRAIN_SPLIT,
                                                            contract.EVAL_SPLIT])
  return os.path.join(artifact_utils.get_split_uri([examples], split), "*")


def train_on_slice(examples_dir: str, output_dir: str, hparams) -> TrainedModel:
  serving_model_dir = os.path.join(output_dir, "serving_model")
  model_run_dir = os.path.join(output_dir, "model_run")
  result = train.train_and_export(
      train_files=[split_pattern(examples_dir, contract.TRAIN_SPLIT)],
      eval_files=[split_pattern(examples_dir, contract.EVAL_SPLIT)],
      serving_model_dir=serving_model_dir, model_run_dir=model_run_dir, hparams=hparams)
  return TrainedModel(serving_model_dir, model_run_dir, result)


@pytest.fixture(scope="session")
def trained_model(examples_dir, tmp_path_factory) -> TrainedModel:
  """The default CNN trained 2 epochs on the slice: export, TensorBoard logs and metrics."""
  return train_on_slice(examples_dir, str(tmp_path_factory.mktemp("trained_model")),
                        SLICE_HPARAMS)


@pytest.fixture(scope="session")
def trained_model_dir(trained_model) -> str:
  """SavedModel dir of the CNN trained on the slice."""
  return trained_model.serving_model_dir


@pytest.fixture(scope="session")
def untrained_model_dir(examples_dir, tmp_path_factory) -> str:
  """SavedModel dir of the same CNN after 0 training steps (a deliberately bad model)."""
  return train_on_slice(examples_dir, str(tmp_path_factory.mktemp("untrained_model")),
                        {"epochs": 0}).serving_model_dir
