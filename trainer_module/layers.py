"""Sonnet-2-style layers: variables made once in __init__, __call__ does the math with tf.nn ops.

Each layer fake-quantizes its weights through its WeightQuantizer; biases stay float (TFLite turns
them into int32 with scale input_scale * weight_scale). `__call__` runs under the module's name
scope (`tf.Module.with_name_scope`, as Sonnet does), so TensorBoard's Graphs tab shows each layer as
one box holding its ops and its weight quantizer.
"""

import math
from typing import Sequence

import tensorflow as tf

from trainer_module import quantizers


def _truncated_normal(shape: Sequence[int], fan_in: int, seed: Sequence[int]) -> tf.Tensor:
  """Sonnet's default initializer (stddev 1/sqrt(fan_in)) from a stateless seed: reproducible."""
  return tf.random.stateless_truncated_normal(shape, seed=seed, stddev=1.0 / math.sqrt(fan_in))


class Linear(tf.Module):
  """y = x @ quantize(w) + b: float32 [N, input_size] -> float32 [N, output_size].

  Weights are quantized per tensor (TFLite's FULLY_CONNECTED takes no per-channel weights).
  """

  def __init__(self, input_size: int, output_size: int, seed: Sequence[int], name=None):
    super().__init__(name=name)
    with self.name_scope:
      self.w = tf.Variable(_truncated_normal([input_size, output_size], input_size, seed), name="w")
      self.b = tf.Variable(tf.zeros([output_size]), name="b")
      self.weight_quantizer = quantizers.WeightQuantizer(per_channel=False, name="weight_quant")

  @tf.Module.with_name_scope
  def __call__(self, x: tf.Tensor, quantize: quantizers.Switch) -> tf.Tensor:
    """x: float32 [N, input_size] -> float32 [N, output_size] (pre-activation, any range)."""
    return tf.matmul(x, self.weight_quantizer(self.w, quantize)) + self.b


class Conv2D(tf.Module):
  """2-D convolution, SAME padding, with a per-output-channel quantized kernel (CONV_2D in TFLite).

  float32 [N, H, W, input_channels] -> float32 [N, ceil(H / stride), ceil(W / stride),
  output_channels].
  """

  def __init__(self, input_channels: int, output_channels: int, kernel_size: int,
               seed: Sequence[int], stride: int = 1, name=None):
    super().__init__(name=name)
    fan_in = kernel_size * kernel_size * input_channels
    self.stride = stride
    with self.name_scope:
      self.w = tf.Variable(_truncated_normal(
          [kernel_size, kernel_size, input_channels, output_channels], fan_in, seed), name="w")
      self.b = tf.Variable(tf.zeros([output_channels]), name="b")
      self.weight_quantizer = quantizers.WeightQuantizer(per_channel=True, name="weight_quant")

  @tf.Module.with_name_scope
  def __call__(self, x: tf.Tensor, quantize: quantizers.Switch) -> tf.Tensor:
    """x: float32 [N, H, W, input_channels] -> float32 [N, H', W', output_channels] (pre-ReLU)."""
    kernel = self.weight_quantizer(self.w, quantize)
    return tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=self.stride, padding="SAME"), self.b)
