"""Fake-quantization modules named after the TFLite/tfmot concepts they reproduce.

Each inserts a FakeQuant op whose range the TFLite converter reads to build the int8 tensor, so
training sees the rounding the int8 model will do. `quantize` may be a Python bool (a fixed graph,
as exported) or a scalar bool tensor (one traced training graph that switches fake quant on after
the quant delay). Every quantizer maps a float32 tensor of any shape to a float32 tensor of the same
shape whose values lie on the int8 grid of its range (or passes it through when `quantize` is
off), and runs under its own name scope (`tf.Module.with_name_scope`), so TensorBoard shows each
as a box named after it (e.g. `conv1_relu_quant`).

tfmot counterparts (tensorflow_model_optimization/python/core/quantization/keras/quantizers.py):
FixedRangeQuantizer ~ FixedQuantizer, MovingAverageQuantizer ~ MovingAverageQuantizer,
WeightQuantizer ~ LastValueQuantizer; each class docstring states where they differ.
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
  """Fake-quantizes over a fixed range, e.g. the model input over [0, 1] (int8 scale 1/255).

  tfmot's FixedQuantizer does the same with a fixed [init_min, init_max] (default [-6, 6], for
  ReLU6); here the range is the caller's, with no variables at all (tfmot stores it in two).
  """

  def __init__(self, min_value: float, max_value: float, name=None):
    super().__init__(name=name)
    self.min_value = min_value
    self.max_value = max_value

  @tf.Module.with_name_scope
  def __call__(self, x: tf.Tensor, quantize: Switch) -> tf.Tensor:
    """x: float32, any shape (images [N, 28, 28, 1] in [0, 1]) -> same shape, clipped to range."""
    return _switched(quantize, lambda: tf.quantization.fake_quant_with_min_max_args(
        x, min=self.min_value, max=self.max_value, num_bits=NUM_BITS), lambda: x)


class MovingAverageQuantizer(tf.Module):
  """Activation quantizer: range tracked by an exponential moving average of batch min/max.

  Like tfmot's MovingAverageQuantizer (per tensor, asymmetric, not narrow range): the range always
  includes 0 (so 0 is exact in int8), it is updated only while training, and it is a non-trainable
  part of the exported model. Differences: the first update takes the batch range as is instead of
  averaging with the arbitrary initial [-6, 6] (tfmot averages from it), and the range keeps
  tracking while fake quant is off (quant delay), so it is settled when fake quant switches on.
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

  @tf.Module.with_name_scope
  def __call__(self, x: tf.Tensor, quantize: Switch, training: bool) -> tf.Tensor:
    """x: float32 activations, any shape ([N, H, W, C] or [N, units]) -> same shape.

    While `training`, first folds the batch's range into the moving average (no gradient).
    """
    if training:
      self._track(tf.stop_gradient(x))
    return _switched(quantize, lambda: tf.quantization.fake_quant_with_min_max_vars(
        x, self.min, self.max, num_bits=NUM_BITS), lambda: x)


class WeightQuantizer(tf.Module):
  """Symmetric narrow-range weight quantizer (int8 weights in [-127, 127], zero point 0).

  Per output channel for conv kernels (TFLite's per-axis conv quantization), per tensor for dense
  weights: TFLite's FULLY_CONNECTED rejects per-channel weights ("mismatched quantized axes").
  tfmot's counterpart is LastValueQuantizer(symmetric=True, narrow_range=True, per_axis=...): both
  use the current weights' max |w| as the range. Difference: tfmot stores that range in min/max
  variables updated while training; here it is computed from the weights at every call, so the
  exported range is the final weights' range by construction and there is no state to checkpoint.
  """

  def __init__(self, per_channel: bool, name=None):
    super().__init__(name=name)
    self.per_channel = per_channel

  @tf.Module.with_name_scope
  def __call__(self, w: tf.Tensor, quantize: Switch) -> tf.Tensor:
    """w: float32 kernel [KH, KW, C_in, C_out] (per channel) or [in, out] -> same shape."""
    def quantized():
      axes = list(range(w.shape.rank - 1)) if self.per_channel else None
      bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(w), axis=axes), 1e-6))
      if self.per_channel:
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(
            w, -bound, bound, num_bits=NUM_BITS, narrow_range=True)
      return tf.quantization.fake_quant_with_min_max_vars(
          w, -bound, bound, num_bits=NUM_BITS, narrow_range=True)
    return _switched(quantize, quantized, lambda: w)
