"""Adam against tf_keras' Adam, step by step (as Sonnet's adam_test.py checks its Adam)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from trainer_module import optimizer as optimizer_lib


def _problem():
  """Two parameters of different shapes and a loss with changing, non-trivial gradients."""
  rng = np.random.default_rng(0)
  return [rng.normal(size=[3, 4]).astype(np.float32), rng.normal(size=[4]).astype(np.float32)]


def _loss(parameters):
  w, b = parameters
  return tf.reduce_sum(tf.square(tf.matmul(tf.ones([2, 3]), w) + b - 1.0)) + tf.reduce_sum(w ** 3)


@pytest.mark.parametrize("learning_rate", [1e-3, 0.1])
def test_adam_matches_tf_keras_adam_step_by_step(learning_rate):
  ours = [tf.Variable(v) for v in _problem()]
  reference = [tf.Variable(v) for v in _problem()]
  adam = optimizer_lib.Adam(ours)
  keras_adam = tf_keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
  for step in range(1, 11):
    with tf.GradientTape(persistent=True) as tape:
      our_loss, reference_loss = _loss(ours), _loss(reference)
    adam.apply(tf.constant(learning_rate), tape.gradient(our_loss, ours), ours)
    gradients = tape.gradient(reference_loss, reference)
    keras_adam.apply_gradients(zip(gradients, reference, strict=True))
    assert int(adam.step.numpy()) == step
    for mine, theirs in zip(ours, reference, strict=True):
      np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
  # The parameters moved: the comparison is not between two untouched copies.
  assert not np.allclose(ours[0].numpy(), _problem()[0])


def test_adam_rejects_gradients_and_parameters_of_different_lengths():
  parameters = [tf.Variable(v) for v in _problem()]
  adam = optimizer_lib.Adam(parameters)
  before = [p.numpy() for p in parameters]
  with pytest.raises(ValueError, match="1 gradients for 2 parameters"):
    adam.apply(tf.constant(0.1), [tf.ones([3, 4])], parameters)
  with pytest.raises(ValueError, match="2 gradients for 1 parameters; it was built for 2"):
    adam.apply(tf.constant(0.1), [tf.ones([3, 4]), tf.ones([4])], parameters[:1])
  with pytest.raises(ValueError, match="None gradient"):
    adam.apply(tf.constant(0.1), [tf.ones([3, 4]), None], parameters)
  # Nothing moved, not even the step counter.
  assert int(adam.step.numpy()) == 0
  for parameter, value in zip(parameters, before, strict=True):
    np.testing.assert_array_equal(parameter.numpy(), value)


@pytest.mark.parametrize("learning_rate", [1e-3, 0.1])
def test_adamw_matches_tf_keras_adamw_and_leaves_undecayed_parameters_alone(learning_rate):
  ours = [tf.Variable(v) for v in _problem()]
  reference = [tf.Variable(v) for v in _problem()]
  adam = optimizer_lib.Adam(ours, weight_decay=0.5, decayed=[True, False])
  keras_adam = tf_keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=0.5,
                                         beta_1=0.9, beta_2=0.999, epsilon=1e-7)
  keras_adam.exclude_from_weight_decay(var_list=[reference[1]])
  plain = [tf.Variable(v) for v in _problem()]
  plain_adam = optimizer_lib.Adam(plain)
  for _ in range(10):
    with tf.GradientTape(persistent=True) as tape:
      our_loss, reference_loss, plain_loss = _loss(ours), _loss(reference), _loss(plain)
    adam.apply(tf.constant(learning_rate), tape.gradient(our_loss, ours), ours)
    plain_adam.apply(tf.constant(learning_rate), tape.gradient(plain_loss, plain), plain)
    keras_adam.apply_gradients(zip(tape.gradient(reference_loss, reference), reference,
                                   strict=True))
    for mine, theirs in zip(ours, reference, strict=True):
      np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
  assert not np.allclose(ours[0].numpy(), plain[0].numpy())  # The decay did something.


def test_adam_rejects_weight_decay_flags_of_another_length():
  with pytest.raises(ValueError, match="1 weight-decay flags for 2 parameters"):
    optimizer_lib.Adam([tf.Variable(v) for v in _problem()], weight_decay=0.1, decayed=[True])
