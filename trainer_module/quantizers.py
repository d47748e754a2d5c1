"""Fake-quantization modules named after the TFLite/tfmot concepts they reproduce.

Each inserts a FakeQuant op whose range the TFLite converter reads to build the int8 tensor, so
training sees the rounding the int8 model will do. `quantize` may be a Python bool (a fixed graph,
as exported) or a scalar bool tensor (one traced training graph that switches fake quant on after
the quant delay).
"""

from typing import Callable, Union

import tensorflow as tf

NUM_BITS = 8
Switch = Union[bool, tf.Tensor]


def _switched(quantize: Switch, quantized: Callable[[], tf.Tensor],
              unquantized: Callable[[], tf.Tensor]) -> tf.Tensor:
  if isinstance(quantize, bool):
    return quantized() if quantize else unquantized()
  return tf.cond(quantize, quantized, unquantized)


class FixedRangeQuantizer(tf.Module):
  """Fake-quantizes over a fixed range, e.g. the model input over [0, 1] (int8 scale 1/255)."""

  def __init__(self, min_value: float, max_value: float, name=None):
    super().__init__(name=name)
    self.min_value = min_value
    self.max_value = max_value

  def __call__(self, x: tf.Tensor, quantize: Switch) -> tf.Tensor:
    return _switched(quantize, lambda: tf.quantization.fake_quant_with_min_max_args(
        x, min=self.min_value, max=self.max_value, num_bits=NUM_BITS), lambda: x)


class MovingAverageQuantizer(tf.Module):
  """Activation quantizer: range tracked by an exponential moving average of batch min/max.

  Like tfmot's MovingAverageQuantizer: the range always includes 0 (so 0 is exact in int8), it is
  updated only while training, and it is a non-trainable part of the exported model. The first
  update takes the batch range as is instead of averaging with the arbitrary initial range.
  """

  def __init__(self, ema_decay: float, name=None):
    super().__init__(name=name)
    self.ema_decay = ema_decay
    with self.name_scope:
      self.min = tf.Variable(-6.0, trainable=False, name="min")
      self.max = tf.Variable(6.0, trainable=False, name="max")
      self.initialized = tf.Variable(False, trainable=False, name="initialized")

  def _track(self, x: tf.Tensor) -> None:
    batch_min = tf.minimum(tf.reduce_min(x), 0.0)
    batch_max = tf.maximum(tf.reduce_max(x), 0.0)
    decay = tf.where(self.initialized, self.ema_decay, 0.0)
    self.min.assign(decay * self.min + (1.0 - decay) * batch_min)
    self.max.assign(decay * self.max + (1.0 - decay) * batch_max)
    self.initialized.assign(True)

  def __call__(self, x: tf.Tensor, quantize: Switch, training: bool) -> tf.Tensor:
    if training:
      self._track(tf.stop_gradient(x))
    return _switched(quantize, lambda: tf.quantization.fake_quant_with_min_max_vars(
        x, self.min, self.max, num_bits=NUM_BITS), lambda: x)


class WeightQuantizer(tf.Module):
  """Symmetric narrow-range weight quantizer (int8 weights in [-127, 127], zero point 0).

  Per output channel for conv kernels (TFLite's per-axis conv quantization), per tensor for dense
  weights: TFLite's FULLY_CONNECTED rejects per-channel weights ("mismatched quantized axes").
  The range is the current max |w|, so the exported ranges are the final weights' ranges.
  """

  def __init__(self, per_channel: bool, name=None):
    super().__init__(name=name)
    self.per_channel = per_channel

  def __call__(self, w: tf.Tensor, quantize: Switch) -> tf.Tensor:
    def quantized():
      axes = list(range(w.shape.rank - 1)) if self.per_channel else None
      bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(w), axis=axes), 1e-6))
      if self.per_channel:
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(
            w, -bound, bound, num_bits=NUM_BITS, narrow_range=True)
      return tf.quantization.fake_quant_with_min_max_vars(
          w, -bound, bound, num_bits=NUM_BITS, narrow_range=True)
    return _switched(quantize, quantized, lambda: w)
