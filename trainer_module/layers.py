"""Sonnet-2-style layers: variables made once in __init__, __call__ does the math with tf.nn ops.

Each layer fake-quantizes its weights through its WeightQuantizer; biases stay float (TFLite turns
them into int32 with scale input_scale * weight_scale).
"""

import math
from typing import Sequence

import tensorflow as tf

from trainer_module import quantizers


def _truncated_normal(shape: Sequence[int], fan_in: int, seed: Sequence[int]) -> tf.Tensor:
  """Sonnet's default initializer (stddev 1/sqrt(fan_in)) from a stateless seed: reproducible."""
  return tf.random.stateless_truncated_normal(shape, seed=seed, stddev=1.0 / math.sqrt(fan_in))


class Linear(tf.Module):
  """y = x @ quantize(w) + b."""

  def __init__(self, input_size: int, output_size: int, seed: Sequence[int], name=None):
    super().__init__(name=name)
    with self.name_scope:
      self.w = tf.Variable(_truncated_normal([input_size, output_size], input_size, seed), name="w")
      self.b = tf.Variable(tf.zeros([output_size]), name="b")
      self.weight_quantizer = quantizers.WeightQuantizer(per_channel=False, name="weight_quant")

  def __call__(self, x: tf.Tensor, quantize: quantizers.Switch) -> tf.Tensor:
    return tf.matmul(x, self.weight_quantizer(self.w, quantize)) + self.b


class Conv2D(tf.Module):
  """2-D convolution, SAME padding, stride 1, with a per-output-channel quantized kernel."""

  def __init__(self, input_channels: int, output_channels: int, kernel_size: int,
               seed: Sequence[int], name=None):
    super().__init__(name=name)
    fan_in = kernel_size * kernel_size * input_channels
    with self.name_scope:
      self.w = tf.Variable(_truncated_normal(
          [kernel_size, kernel_size, input_channels, output_channels], fan_in, seed), name="w")
      self.b = tf.Variable(tf.zeros([output_channels]), name="b")
      self.weight_quantizer = quantizers.WeightQuantizer(per_channel=True, name="weight_quant")

  def __call__(self, x: tf.Tensor, quantize: quantizers.Switch) -> tf.Tensor:
    kernel = self.weight_quantizer(self.w, quantize)
    return tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), self.b)
