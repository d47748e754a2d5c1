"""The quantization-aware networks: every tensor that becomes int8 in TFLite is fake-quantized.

Input over [0, 1]; each weight (layers.py); each activation after its ReLU (the conv/dense + bias +
ReLU fuse into one TFLite op, so the pre-ReLU tensor never exists in int8); the logits. Max pooling
and reshape keep their input's int8 range in TFLite, so they get no quantizer of their own (a
different range there would force a requantize op).

Both networks share one head (`_QatNetwork.__call__`): input quantizer, the network's own feature
extractor, dense - ReLU, dropout, dense -> logits. Every module's ops sit under its name scope, so
the inference graph reads qat_cnn/{input_quant, conv1, conv1_relu_quant, pool1, ..., logits_quant}.
"""

from typing import Optional, Sequence, Union

import tensorflow as tf

from core import contract
from trainer_module import hparams as hparams_lib
from trainer_module import layers
from trainer_module import quantizers


class _QatNetwork(tf.Module):
  """The shared head: input quantizer, features, dense - ReLU, dropout, dense -> logits quantizer.

  Subclasses build their feature layers in __init__ under the name scope, then call
  `_build_head(flat_size, hidden_units, seed)`, and implement `_features`.
  """

  def __init__(self, hp: hparams_lib.HParams, name=None):
    super().__init__(name=name)
    self.dropout = hp.dropout
    self.ema_decay = hp.ema_decay
    with self.name_scope:
      # The same [0, 1] as features.scale_pixels, so int8 input = pixel - 128 exactly.
      self.input_quantizer = quantizers.FixedRangeQuantizer(0.0, 1.0, name="input_quant")

  def _build_head(self, flat_size: int, hidden_units: int, seed: int) -> None:
    self.flat_size = flat_size
    with self.name_scope:
      self.hidden = layers.Linear(flat_size, hidden_units, seed=[seed, 100], name="dense1")
      self.hidden_quantizer = self._activation_quantizer("dense1_relu_quant")
      self.head = layers.Linear(hidden_units, contract.NUM_CLASSES, seed=[seed, 101],
                                name="logits")
      self.logits_quantizer = self._activation_quantizer("logits_quant")

  def _activation_quantizer(self, name: str) -> quantizers.MovingAverageQuantizer:
    return quantizers.MovingAverageQuantizer(self.ema_decay, name=name)

  def _features(self, x: tf.Tensor, quantize: quantizers.Switch, training: bool) -> tf.Tensor:
    """Fake-quantized images [N, 28, 28, 1] -> float32 features [N, flat_size]."""
    raise NotImplementedError

  def _drop(self, x: tf.Tensor, training: bool, dropout_seed: Optional[tf.Tensor]) -> tf.Tensor:
    if not training or self.dropout == 0.0:
      return x
    if dropout_seed is None:
      raise ValueError("Training with dropout needs a dropout_seed (stateless, reproducible).")
    return tf.nn.experimental.stateless_dropout(x, rate=self.dropout, seed=dropout_seed)

  @tf.Module.with_name_scope
  def __call__(self, images: tf.Tensor, quantize: quantizers.Switch, training: bool,
               dropout_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Maps float32 images [N, 28, 28, 1] in [0, 1] to fake-quantized float32 logits [N, 10].

    `training` tracks the activation ranges and applies dropout (which needs `dropout_seed`, an
    int64 [2] stateless seed); `quantize` switches the FakeQuant ops (bool or scalar bool tensor).
    """
    x = self._features(self.input_quantizer(images, quantize), quantize, training)
    x = self.hidden_quantizer(tf.nn.relu(self.hidden(x, quantize)), quantize, training)
    x = self._drop(x, training, dropout_seed)
    return self.logits_quantizer(self.head(x, quantize), quantize, training)

  def activation_quantizers(self) -> Sequence[quantizers.MovingAverageQuantizer]:
    return [m for m in self.submodules if isinstance(m, quantizers.MovingAverageQuantizer)]


class QatCnn(_QatNetwork):
  """(conv - ReLU - 2x2 maxpool) per entry of conv_filters, then the shared dense head."""

  def __init__(self, hp: hparams_lib.HParams, name="qat_cnn"):
    super().__init__(hp, name=name)
    with self.name_scope:
      self.convs, self.conv_quantizers = [], []
      channels, size = 1, contract.IMAGE_HEIGHT
      for i, filters in enumerate(hp.conv_filters):
        self.convs.append(layers.Conv2D(channels, filters, hp.conv_kernel_size,
                                        seed=[hp.seed, i], name=f"conv{i + 1}"))
        self.conv_quantizers.append(self._activation_quantizer(f"conv{i + 1}_relu_quant"))
        channels, size = filters, (size + 1) // 2
    self._build_head(size * size * channels, hp.dense_units, hp.seed)

  def _features(self, x: tf.Tensor, quantize: quantizers.Switch, training: bool) -> tf.Tensor:
    """[N, 28, 28, 1] -> [N, S * S * C] after each conv - ReLU - quant - pool (S halves each)."""
    for i, (conv, quantizer) in enumerate(zip(self.convs, self.conv_quantizers, strict=True)):
      x = quantizer(tf.nn.relu(conv(x, quantize)), quantize, training)
      x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME", name=f"pool{i + 1}")
    return tf.reshape(x, [-1, self.flat_size], name="flatten")


class QatMlp(_QatNetwork):
  """The seed's 784-512-10 MLP with the same quantizers and head."""

  def __init__(self, hp: hparams_lib.HParams, name="qat_mlp"):
    super().__init__(hp, name=name)
    self._build_head(contract.NUM_PIXELS, hp.mlp_units, hp.seed)

  def _features(self, x: tf.Tensor, quantize: quantizers.Switch, training: bool) -> tf.Tensor:
    """[N, 28, 28, 1] -> [N, 784]."""
    return tf.reshape(x, [-1, contract.NUM_PIXELS], name="flatten")


Network = Union[QatCnn, QatMlp]


def forward_macs(hp: hparams_lib.HParams) -> int:
  """Multiply-adds per image of the forward pass's convolutions and matmuls (the rest is small).

  Training costs about 3x this per example (forward, gradient w.r.t. inputs and to weights), i.e.
  2 FLOP x 3 x forward_macs per example per epoch.
  """
  macs, channels, size = 0, 1, contract.IMAGE_HEIGHT
  units = contract.NUM_PIXELS
  if hp.model == "cnn":
    for filters in hp.conv_filters:
      macs += size * size * hp.conv_kernel_size ** 2 * channels * filters
      channels, size = filters, (size + 1) // 2
    units = size * size * channels
  hidden = hp.dense_units if hp.model == "cnn" else hp.mlp_units
  return macs + units * hidden + hidden * contract.NUM_CLASSES


def training_flop(hp: hparams_lib.HParams, examples_per_epoch: int) -> float:
  """FLOP of a whole training run: forward_macs x 2 (FLOP per MAC) x 3 (forward + backward) x
  examples x epochs."""
  return forward_macs(hp) * 2.0 * 3.0 * examples_per_epoch * hp.epochs


def decayed_flags(network: Network) -> Sequence[bool]:
  """Per entry of network.trainable_variables: whether weight decay applies (the conv and dense
  kernels, not the biases)."""
  kernels = {m.w.ref() for m in network.submodules if isinstance(m, (layers.Conv2D, layers.Linear))}
  return [v.ref() in kernels for v in network.trainable_variables]


def build(hp: hparams_lib.HParams) -> Network:
  return QatCnn(hp) if hp.model == "cnn" else QatMlp(hp)
