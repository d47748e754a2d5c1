"""The trainer's hyperparameters: one dataclass, filled from the Trainer's custom_config."""

import dataclasses
import hashlib
import json
from typing import Any, Mapping, Optional, Sequence, Tuple

from components import config_values

MODELS = ("cnn", "mlp")
LR_SCHEDULES = ("cosine", "exponential", "constant")
# The custom_config key (and HParams field) of the training code's fingerprint.
CODE_FINGERPRINT_KEY = "code_fingerprint"


@dataclasses.dataclass(frozen=True)
class HParams:
  """Everything that shapes a training run; defaults are the shipped model's settings."""
  model: str = "cnn"  # "cnn" (conv-relu-pool x2, dense, dropout, dense) or "mlp" (784-512-10).
  epochs: int = 10
  batch_size: int = 128
  learning_rate: float = 2e-3  # Adam's initial step size.
  lr_schedule: str = "cosine"  # cosine: to 0 over the run; exponential: x lr_decay_rate per epoch.
  lr_decay_rate: float = 0.7
  dropout: float = 0.4  # Before the last dense layer; only while training.
  conv_filters: Tuple[int, ...] = (32, 64)
  conv_kernel_size: int = 3
  dense_units: int = 128  # The CNN's hidden dense layer.
  mlp_units: int = 512  # The MLP's hidden layer.
  max_shift: int = 2  # Random translation of training images by up to this many pixels.
  quant_delay: int = 0  # Steps with float math before fake quant switches on (ranges always track).
  ema_decay: float = 0.99  # Moving-average decay of the activation ranges.
  seed: int = 0
  summary_every_steps: int = 100  # TensorBoard scalars/histograms interval.
  # When set, checkpoints go to <checkpoint_dir>/<run_key> so a retried Trainer (new model_run_dir)
  # with the same data and hyperparameters resumes; empty means <model_run_dir>/checkpoints.
  checkpoint_dir: str = ""
  # Not a hyperparameter: the pipeline's fingerprint of the training code
  # (pipeline/code_fingerprint.py), so that the Trainer's cache and the checkpoint key follow the
  # code. Training ignores it.
  code_fingerprint: str = ""

  def __post_init__(self):
    if self.model not in MODELS:
      raise ValueError(f"Unknown model {self.model!r}; expected one of {MODELS}.")
    if self.lr_schedule not in LR_SCHEDULES:
      raise ValueError(f"Unknown lr_schedule {self.lr_schedule!r}; expected one of {LR_SCHEDULES}.")
    if self.epochs < 0 or self.batch_size <= 0 or self.quant_delay < 0 or self.max_shift < 0:
      raise ValueError(f"epochs, quant_delay and max_shift must be >= 0 and batch_size > 0: {self}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
    if not 0.0 < self.ema_decay < 1.0:
      raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}.")

  @classmethod
  def from_config(cls, config: Optional[Mapping[str, Any]]) -> "HParams":
    """Builds HParams from a custom_config dict, rejecting keys it does not know.

    Values are coerced to the field's type because custom_config travels as JSON (lists, ints for
    floats) through Kubeflow; booleans given as text go through config_values.parse_bool, so
    "False" is False.
    """
    config = dict(config or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
      raise ValueError(f"Unknown trainer hyperparameter(s) {unknown}; known: {sorted(fields)}.")
    defaults = cls()
    values = {}
    for name, value in config.items():
      default = getattr(defaults, name)
      try:
        if isinstance(default, tuple):
          values[name] = tuple(int(v) for v in value)
        elif isinstance(default, bool):
          values[name] = config_values.parse_bool(name, value)
        else:
          values[name] = type(default)(value)
      except (TypeError, ValueError) as e:
        raise ValueError(f"Trainer hyperparameter {name}={value!r} is not a "
                         f"{type(default).__name__}: {e}") from e
    return cls(**values)

  def run_key(self, train_files: Sequence[str]) -> str:
    """A stable key for (training data, hyperparameters, training code) that names a resumable
    checkpoint dir: a retried Trainer never resumes a checkpoint written by other code."""
    described = dataclasses.asdict(self)
    described.pop("checkpoint_dir")
    described.pop("summary_every_steps")
    payload = json.dumps({"train_files": sorted(train_files), "hparams": described}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
