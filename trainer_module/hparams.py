"""The trainer's hyperparameters: one dataclass, filled from the Trainer's custom_config."""

import dataclasses
import hashlib
import json
from typing import Any, Mapping, Optional, Sequence, Tuple

from core import config_values

MODELS = ("cnn", "mlp")
LR_SCHEDULES = ("one_cycle", "cosine", "exponential", "constant")
# The custom_config key (and HParams field) of the training code's fingerprint.
CODE_FINGERPRINT_KEY = "code_fingerprint"
PRESET_KEY = "preset"  # custom_config key naming a preset applied before the other keys.


@dataclasses.dataclass(frozen=True)
class HParams:
  """Everything that shapes a training run; defaults are the shipped model's settings.

  The default (issue 10): conv16-conv32-conv48 (3x3, each + 2x2 max pool) - dense128 - dense10,
  ~1.79 M multiply-adds per image, 6 epochs with a one-cycle schedule: ~3.9 TFLOP of training
  (model.training_flop) for >= 99.4 % int8 on the MNIST test set (BENCHMARKS.md).
  PRESETS["cnn_large"] is the previous default (~15 TFLOP).
  """
  model: str = "cnn"  # "cnn" (conv-relu-pool per conv_filters, dense, dropout, dense) or "mlp".
  epochs: int = 6
  batch_size: int = 128
  learning_rate: float = 2e-3  # Adam's peak step size.
  # one_cycle: linear warm-up from learning_rate / 10 over warmup_fraction of the run, then cosine
  # to 0; cosine: to 0 over the run; exponential: x lr_decay_rate per epoch; constant.
  lr_schedule: str = "one_cycle"
  warmup_fraction: float = 0.2  # one_cycle only.
  lr_decay_rate: float = 0.7
  dropout: float = 0.1  # Before the last dense layer; only while training.
  conv_filters: Tuple[int, ...] = (16, 32, 48)
  conv_kernel_size: int = 3
  dense_units: int = 128  # The CNN's hidden dense layer.
  mlp_units: int = 512  # The MLP's hidden layer.
  max_shift: int = 1  # Random translation of training images by up to this many pixels.
  # Random rotation by up to +-max_rotation degrees and scaling by a factor in
  # [1 - max_scale, 1 + max_scale] about the image centre (bilinear, zero fill), after the shift;
  # both 0 (the default) = no warp.
  max_rotation: float = 0.0
  max_scale: float = 0.0
  # Decoupled weight decay (AdamW, Loshchilov & Hutter) on the conv and dense kernels (not the
  # biases): each step w -= scheduled learning rate x weight_decay x w. 0 = plain Adam.
  weight_decay: float = 0.0
  # Training targets (1 - label_smoothing) one-hot + label_smoothing / 10; 0 = hard labels.
  label_smoothing: float = 0.0
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
    if not 0.0 <= self.warmup_fraction < 1.0:
      raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}.")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
    if not 0.0 <= self.max_rotation <= 180.0 or not 0.0 <= self.max_scale < 1.0:
      raise ValueError(f"max_rotation must be in [0, 180] and max_scale in [0, 1): "
                       f"{self.max_rotation}, {self.max_scale}.")
    if self.weight_decay < 0.0:
      raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
    if not 0.0 <= self.label_smoothing < 1.0:
      raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}.")
    if not 0.0 < self.ema_decay < 1.0:
      raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}.")

  @classmethod
  def from_config(cls, config: Optional[Mapping[str, Any]]) -> "HParams":
    """Builds HParams from a custom_config dict, rejecting keys it does not know.

    Values are coerced to the field's type because custom_config travels as JSON (lists, ints for
    floats) through Kubeflow; booleans given as text go through config_values.parse_bool, so
    "False" is False. `preset` (a name in PRESETS) sets that preset's values first; the other
    keys override them.
    """
    config = dict(config or {})
    preset = config.pop(PRESET_KEY, None)
    if preset is not None:
      if preset not in PRESETS:
        raise ValueError(f"Unknown trainer preset {preset!r}; expected one of {sorted(PRESETS)}.")
      config = {**PRESETS[preset], **config}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
      known = sorted(set(fields) - {CODE_FINGERPRINT_KEY} | {PRESET_KEY})
      raise ValueError(f"Unknown trainer hyperparameter(s) {unknown}; known: {known}.")
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


# Named settings for comparison; the dataclass defaults are the shipped one ("default").
PRESETS = {
    "default": {},
    # The default until issue 10: conv32-conv64 + pool, dense128; ~4.2 M multiply-adds per image,
    # ~15 TFLOP for its 10 epochs. int8 99.46-99.51 % on the MNIST test set.
    "cnn_large": {"conv_filters": (32, 64), "conv_kernel_size": 3, "dense_units": 128,
                  "epochs": 10, "batch_size": 128, "learning_rate": 2e-3, "lr_schedule": "cosine",
                  "dropout": 0.4, "max_shift": 2, "quant_delay": 0},
    # For accuracy over cost: >= 99.60 % int8 on each of seeds 0, 1, 2 (the default: 99.45-99.51 %).
    # conv32-conv64-conv128 + pool, dense256; ~8.0 M multiply-adds per image, ~34 TFLOP for its
    # 12 one-cycle epochs (~9x the default). Rotation +-10 degrees and scaling +-10 % on top of the
    # 2-pixel shifts, AdamW and label smoothing (measurements: BENCHMARKS.md, Trainer).
    "accurate": {"conv_filters": (32, 64, 128), "dense_units": 256, "epochs": 12,
                 "dropout": 0.3, "max_shift": 2, "max_rotation": 10.0, "max_scale": 0.1,
                 "weight_decay": 0.05, "label_smoothing": 0.1},
}
