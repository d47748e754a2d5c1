"""The routes `mnist-tfx compare` trains, and the recipe they share.

A route is a network, a trainer (the hand-built QAT trainer or the Keras baseline) and a way to
int8 (quantization-aware training, or float training + post-training quantization). A recipe is
how a network is trained: data order, augmentation, batch size, epochs, learning-rate schedule,
initialization. Every route that trains the same network trains it under THE recipe, the hand-built
trainer's defaults (`RECIPE_FIELDS` of `HParams()`), from the same code (see
trainer_module/keras_baseline.py), so a difference between them is a difference of method. The
seed's Keras MLP also runs under the seed's own recipe (constant learning rate 1e-3, 5 epochs, no
augmentation, Keras' Glorot-uniform initialization), as a labelled reference row beside its
same-recipe row.
"""

import dataclasses
from typing import Any, Dict, List, Optional

from trainer_module import hparams as hparams_lib
from trainer_module import keras_baseline

HAND_BUILT = "hand-built"
KERAS = "keras"
QAT = "QAT"
PTQ = "PTQ"
TRAINER_RECIPE = "trainer"  # The hand-built trainer's defaults.
SEED_RECIPE = "seed"  # The seed's Keras example (keras_baseline.KERAS_DEFAULTS).
ACCURATE_PRESET = "accurate"
# The HParams fields that make up the recipe (beside the initialization, which HParams does not
# name: the hand-built layers always draw theirs one way).
RECIPE_FIELDS = ("epochs", "batch_size", "learning_rate", "lr_schedule", "warmup_fraction",
                 "lr_decay_rate", "max_shift")
# The networks. The Keras MLP of the seed; the seed's hand-written 784-512-10 network; the
# hand-built trainer's default CNN.
MLP_128 = {"model": "mlp", "mlp_units": 128, "dropout": 0.2}
MLP_512 = {"model": "mlp", "mlp_units": 512, "dropout": hparams_lib.HParams().dropout}
CNN_FIELDS = ("conv_filters", "conv_kernel_size", "dense_units", "dropout")


@dataclasses.dataclass(frozen=True)
class Route:
  """One way from MNIST to a full-int8 TFLite model."""
  key: str  # Directory and JSON name.
  network: str  # For the table, e.g. "MLP 784-128-10".
  trainer: str  # HAND_BUILT (trainer_module.train) or KERAS (trainer_module.keras_baseline).
  quantization: str  # QAT (fake quant while training) or PTQ (float training, calibrated after).
  recipe: str  # TRAINER_RECIPE, SEED_RECIPE, or a preset's name.
  config: Dict[str, Any]  # The trainer's custom_config, seed aside.

  @property
  def label(self) -> str:
    how = {QAT: "tfmot QAT" if self.trainer == KERAS else "QAT",
           PTQ: "float + PTQ"}[self.quantization]
    return f"{'Keras' if self.trainer == KERAS else 'hand-built'} {self.network}, {how}"


def trainer_recipe() -> Dict[str, Any]:
  """The recipe's HParams values: the hand-built trainer's defaults."""
  defaults = hparams_lib.HParams()
  return {name: getattr(defaults, name) for name in RECIPE_FIELDS}


def recipe_description(recipe: str) -> str:
  """One line saying what a route's recipe is, from the values the trainers use."""
  if recipe == SEED_RECIPE:
    hp, _, initializer = keras_baseline.parse_config({})
    return (f"the seed's Keras example: constant learning rate {hp.learning_rate:g}, "
            f"{hp.epochs} epochs, batch {hp.batch_size}, no augmentation, {initializer} "
            "initialization")
  if recipe == TRAINER_RECIPE:
    hp = hparams_lib.HParams()
    schedule = (f"one-cycle learning rate (linear warm-up from {hp.learning_rate / 10:g} to "
                f"{hp.learning_rate:g} over the first {hp.warmup_fraction:.0%} of the steps, "
                "then cosine decay to 0)" if hp.lr_schedule == "one_cycle" else
                f"{hp.lr_schedule} learning rate from {hp.learning_rate:g}")
    return (f"the hand-built trainer's defaults: {schedule}, {hp.epochs} epochs, batch "
            f"{hp.batch_size}, random shifts of up to {hp.max_shift} pixel, truncated-normal "
            "1/sqrt(fan-in) initialization, the trainer's shuffle per epoch and seed")
  settings = ", ".join(f"{name}={value}" for name, value in hparams_lib.PRESETS[recipe].items())
  return (f"the hand-built trainer's preset `{recipe}` (network and recipe): {settings}; the "
          "rest as the trainer's defaults")


def _cnn() -> Dict[str, Any]:
  defaults = hparams_lib.HParams()
  return {"model": "cnn", **{name: getattr(defaults, name) for name in CNN_FIELDS}}


def cnn_name(hp: hparams_lib.HParams) -> str:
  """E.g. "CNN conv16-conv32-conv48-dense128"."""
  return f"CNN {'-'.join(f'conv{f}' for f in hp.conv_filters)}-dense{hp.dense_units}"


def routes() -> List[Route]:
  """Every route, grouped by network: the MLP-128 (the seed's recipe as reference, then the
  trainer's), the 784-512-10 MLP, the default CNN three ways, and the hand-built trainer's
  `accurate` preset (its own, larger CNN and longer recipe: the best int8 accuracy the hand-built
  QAT reaches, beside the default's cost)."""
  recipe = trainer_recipe()
  keras_recipe = {**recipe, keras_baseline.INITIALIZER_KEY: keras_baseline.FAN_IN_TRUNCATED_NORMAL}
  quantize = {keras_baseline.QUANTIZE_KEY: True}
  accurate = {hparams_lib.PRESET_KEY: ACCURATE_PRESET}
  mlp128, mlp512, cnn = "MLP 784-128-10", "MLP 784-512-10", cnn_name(hparams_lib.HParams())
  return [
      Route("keras_mlp128_ptq_seed", mlp128, KERAS, PTQ, SEED_RECIPE, {}),
      Route("keras_mlp128_tfmot_seed", mlp128, KERAS, QAT, SEED_RECIPE, quantize),
      Route("keras_mlp128_ptq", mlp128, KERAS, PTQ, TRAINER_RECIPE, {**MLP_128, **keras_recipe}),
      Route("keras_mlp128_tfmot", mlp128, KERAS, QAT, TRAINER_RECIPE,
            {**MLP_128, **keras_recipe, **quantize}),
      Route("hand_mlp128", mlp128, HAND_BUILT, QAT, TRAINER_RECIPE, {**MLP_128, **recipe}),
      Route("hand_mlp512", mlp512, HAND_BUILT, QAT, TRAINER_RECIPE, {**MLP_512, **recipe}),
      Route("hand_cnn", cnn, HAND_BUILT, QAT, TRAINER_RECIPE, {**_cnn(), **recipe}),
      Route("keras_cnn_tfmot", cnn, KERAS, QAT, TRAINER_RECIPE,
            {**_cnn(), **keras_recipe, **quantize}),
      Route("keras_cnn_ptq", cnn, KERAS, PTQ, TRAINER_RECIPE, {**_cnn(), **keras_recipe}),
      Route("hand_cnn_accurate", cnn_name(hparams_lib.HParams.from_config(accurate)), HAND_BUILT,
            QAT, ACCURATE_PRESET, accurate),
  ]


def run_config(route: Route, seed: int, epochs: Optional[int] = None) -> Dict[str, Any]:
  """The custom_config of one training of `route`: its own, the seed, and `epochs` if given."""
  return {**route.config, "seed": seed, **({"epochs": epochs} if epochs is not None else {})}
