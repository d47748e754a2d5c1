"""The quantization-aware networks: every tensor that becomes int8 in TFLite is fake-quantized.

Input over [0, 1]; each weight (layers.py); each activation after its ReLU (the conv/dense + bias +
ReLU fuse into one TFLite op, so the pre-ReLU tensor never exists in int8); the logits. Max pooling
and reshape keep their input's int8 range in TFLite, so they get no quantizer of their own (a
different range there would force a requantize op).
"""

from typing import Optional, Sequence, Union

import tensorflow as tf

from components import contract
from trainer_module import hparams as hparams_lib
from trainer_module import layers
from trainer_module import quantizers


class _QatNetwork(tf.Module):
  """Shared by both networks: the input and logits quantizers and the dropout before the head."""

  def __init__(self, hp: hparams_lib.HParams, name=None):
    super().__init__(name=name)
    self.dropout = hp.dropout
    self.ema_decay = hp.ema_decay
    with self.name_scope:
      # The same [0, 1] as features.scale_pixels, so int8 input = pixel - 128 exactly.
      self.input_quantizer = quantizers.FixedRangeQuantizer(0.0, 1.0, name="input_quant")
      self.logits_quantizer = quantizers.MovingAverageQuantizer(hp.ema_decay, name="logits_quant")

  def _activation_quantizer(self, name: str) -> quantizers.MovingAverageQuantizer:
    return quantizers.MovingAverageQuantizer(self.ema_decay, name=name)

  def _drop(self, x: tf.Tensor, training: bool, dropout_seed: Optional[tf.Tensor]) -> tf.Tensor:
    if not training or self.dropout == 0.0:
      return x
    if dropout_seed is None:
      raise ValueError("Training with dropout needs a dropout_seed (stateless, reproducible).")
    return tf.nn.experimental.stateless_dropout(x, rate=self.dropout, seed=dropout_seed)

  def activation_quantizers(self) -> Sequence[quantizers.MovingAverageQuantizer]:
    return [m for m in self.submodules if isinstance(m, quantizers.MovingAverageQuantizer)]


class QatCnn(_QatNetwork):
  """(conv - ReLU - maxpool) per entry of conv_filters, dense - ReLU, dropout, dense -> logits."""

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
      self.flat_size = size * size * channels
      self.hidden = layers.Linear(self.flat_size, hp.dense_units, seed=[hp.seed, 100],
                                  name="dense1")
      self.hidden_quantizer = self._activation_quantizer("dense1_relu_quant")
      self.head = layers.Linear(hp.dense_units, contract.NUM_CLASSES, seed=[hp.seed, 101],
                                name="logits")

  def __call__(self, images: tf.Tensor, quantize: quantizers.Switch, training: bool,
               dropout_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Maps float images [N, 28, 28, 1] in [0, 1] to fake-quantized logits [N, 10]."""
    x = self.input_quantizer(images, quantize)
    for conv, quantizer in zip(self.convs, self.conv_quantizers, strict=True):
      x = quantizer(tf.nn.relu(conv(x, quantize)), quantize, training)
      x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")
    x = tf.reshape(x, [-1, self.flat_size])
    x = self.hidden_quantizer(tf.nn.relu(self.hidden(x, quantize)), quantize, training)
    x = self._drop(x, training, dropout_seed)
    return self.logits_quantizer(self.head(x, quantize), quantize, training)


class QatMlp(_QatNetwork):
  """The seed's 784-512-10 MLP with the same quantizers."""

  def __init__(self, hp: hparams_lib.HParams, name="qat_mlp"):
    super().__init__(hp, name=name)
    with self.name_scope:
      self.hidden = layers.Linear(contract.NUM_PIXELS, hp.mlp_units, seed=[hp.seed, 0],
                                  name="dense1")
      self.hidden_quantizer = self._activation_quantizer("dense1_relu_quant")
      self.head = layers.Linear(hp.mlp_units, contract.NUM_CLASSES, seed=[hp.seed, 1],
                                name="logits")

  def __call__(self, images: tf.Tensor, quantize: quantizers.Switch, training: bool,
               dropout_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    x = tf.reshape(self.input_quantizer(images, quantize), [-1, contract.NUM_PIXELS])
    x = self.hidden_quantizer(tf.nn.relu(self.hidden(x, quantize)), quantize, training)
    x = self._drop(x, training, dropout_seed)
    return self.logits_quantizer(self.head(x, quantize), quantize, training)


Network = Union[QatCnn, QatMlp]


def build(hp: hparams_lib.HParams) -> Network:
  return QatCnn(hp) if hp.model == "cnn" else QatMlp(hp)
