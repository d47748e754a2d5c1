"""Adam as a tf.Module (in the style of snt.optimizers.Adam) and the learning-rate schedules.

Slots are made in __init__ from the parameter list, so a checkpoint restores them before the first
step; `step` is the global step that drives the schedule, the quant delay and dropout seeds.
"""

import math
from typing import Optional, Sequence

import tensorflow as tf

from trainer_module import hparams as hparams_lib


def learning_rate(hp: hparams_lib.HParams, step: tf.Tensor, steps_per_epoch: int,
                  total_steps: int) -> tf.Tensor:
  """The schedule's learning rate at `step`, float32 scalar (one_cycle and cosine reach 0 at
  `total_steps`)."""
  step = tf.cast(step, tf.float32)
  if hp.lr_schedule == "one_cycle":
    warmup = hp.warmup_fraction * max(total_steps, 1)
    progress = tf.clip_by_value((step - warmup) / max(total_steps - warmup, 1.0), 0.0, 1.0)
    decay = 0.5 * (1.0 + tf.cos(math.pi * progress))
    rise = 0.1 + 0.9 * tf.minimum(step / max(warmup, 1.0), 1.0)
    return hp.learning_rate * tf.where(step < warmup, rise, decay)
  if hp.lr_schedule == "cosine":
    progress = tf.minimum(step / float(max(total_steps, 1)), 1.0)
    return hp.learning_rate * 0.5 * (1.0 + tf.cos(math.pi * progress))
  if hp.lr_schedule == "exponential":
    return hp.learning_rate * tf.pow(hp.lr_decay_rate, step / float(max(steps_per_epoch, 1)))
  return tf.constant(hp.learning_rate)


class Adam(tf.Module):
  """Adam (Kingma & Ba, Algorithm 1) with bias correction folded into the step size.

  The update is tf_keras' Adam, epsilon added to sqrt(v) before bias correction:
  lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); p -= lr_t * m / (sqrt(v) + epsilon).
  (snt.optimizers.Adam adds epsilon after it: p -= lr * m_hat / (sqrt(v_hat) + epsilon), with
  m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t); the two differ while v is near epsilon^2.)

  With `weight_decay` > 0 it is AdamW (Loshchilov & Hutter, decoupled weight decay, as
  torch.optim.AdamW): each parameter whose `decayed` entry is true first shrinks by
  p -= lr * weight_decay * p (lr: the scheduled rate, without the bias correction).
  """

  def __init__(self, parameters: Sequence[tf.Variable], beta1: float = 0.9, beta2: float = 0.999,
               epsilon: float = 1e-7, weight_decay: float = 0.0,
               decayed: Optional[Sequence[bool]] = None, name="adam"):
    super().__init__(name=name)
    self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
    self.weight_decay = weight_decay
    self.decayed = list(decayed) if decayed is not None else [True] * len(parameters)
    if len(self.decayed) != len(parameters):
      raise ValueError(f"Adam got {len(self.decayed)} weight-decay flags for "
                       f"{len(parameters)} parameters.")
    with self.name_scope:
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self.m = [tf.Variable(tf.zeros_like(p), trainable=False, name="m") for p in parameters]
      self.v = [tf.Variable(tf.zeros_like(p), trainable=False, name="v") for p in parameters]

  def apply(self, learning_rate: tf.Tensor, gradients: Sequence[tf.Tensor],
            parameters: Sequence[tf.Variable]) -> None:
    """One step: parameters[i] -= update from gradients[i] (same shapes, float32).

    Raises:
      ValueError: gradients, parameters and the slots made in __init__ differ in number (zip
        would otherwise drop the extra ones silently), or a gradient is None.
    """
    if not len(gradients) == len(parameters) == len(self.m):
      raise ValueError(f"Adam got {len(gradients)} gradients for {len(parameters)} parameters; "
                       f"it was built for {len(self.m)}.")
    if any(gradient is None for gradient in gradients):
      raise ValueError("Adam got a None gradient: a parameter does not affect the loss.")
    step = tf.cast(self.step.assign_add(1), tf.float32)
    corrected_lr = (learning_rate * tf.sqrt(1.0 - tf.pow(self.beta2, step)) /
                    (1.0 - tf.pow(self.beta1, step)))
    for gradient, parameter, m, v, decayed in zip(gradients, parameters, self.m, self.v,
                                                  self.decayed, strict=True):
      if self.weight_decay and decayed:
        parameter.assign_sub(learning_rate * self.weight_decay * parameter)
      m.assign(self.beta1 * m + (1.0 - self.beta1) * gradient)
      v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(gradient))
      parameter.assign_sub(corrected_lr * m / (tf.sqrt(v) + self.epsilon))
