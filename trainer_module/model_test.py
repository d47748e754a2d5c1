"""The QAT networks: FakeQuant at every int8 tensor, switchable in one graph, learned ranges."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from core import contract
from core import features
from tests import mnist_slices
from trainer_module import hparams as hparams_lib
from trainer_module import model as model_lib

_SEED = tf.constant([0, 0], tf.int64)
_IMAGES_SPEC = tf.TensorSpec([None, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1], tf.float32)


def _inference_graph(network, quantize):
  fn = tf.function(lambda images: network(images, quantize=quantize, training=False))
  return fn.get_concrete_function(_IMAGES_SPEC).graph


def _producer_type(tensor):
  """The type of the op that computes `tensor`, looking through Identity ops."""
  while tensor.op.type == "Identity":
    tensor = tensor.op.inputs[0]
  return tensor.op.type


@pytest.fixture(scope="module")
def digits():
  images, labels = mnist_slices.load_full(contract.TRAIN_SPLIT)
  return features.to_images(images[:64].reshape(64, -1)), labels[:64]


@pytest.mark.parametrize("model, convs, dense", [
    ("cnn", len(hparams_lib.HParams().conv_filters), 2), ("mlp", 0, 2),
    ("cnn", 2, 2)])
def test_fake_quant_at_every_int8_tensor(model, convs, dense):
  network = model_lib.build(hparams_lib.HParams(model=model,
                                                conv_filters=(32, 64, 128)[:convs] or (32,)))
  graph = _inference_graph(network, quantize=True)
  ops = graph.get_operations()
  counts = collections.Counter(op.type for op in ops)
  # Input over [0, 1]; a per-channel kernel per conv; per-tensor weights per dense layer; one
  # activation range per ReLU (convs + hidden dense) and one for the logits.
  assert counts["FakeQuantWithMinMaxArgs"] == 1
  assert counts["FakeQuantWithMinMaxVarsPerChannel"] == convs
  assert counts["FakeQuantWithMinMaxVars"] == dense + (convs + 1) + 1
  (input_quant,) = [op for op in ops if op.type == "FakeQuantWithMinMaxArgs"]
  assert (input_quant.get_attr("min"), input_quant.get_attr("max")) == (0.0, 1.0)
  assert input_quant.inputs[0].op.type == "Placeholder"
  for op in ops:
    if op.type == "Conv2D":
      assert _producer_type(op.inputs[1]) == "FakeQuantWithMinMaxVarsPerChannel"
      assert op.inputs[1].op.get_attr("narrow_range")
    if op.type == "MatMul":
      assert _producer_type(op.inputs[1]) == "FakeQuantWithMinMaxVars"
      assert op.inputs[1].op.get_attr("narrow_range")
    if op.type == "Relu":
      assert [c.type for c in op.outputs[0].consumers()] == ["FakeQuantWithMinMaxVars"]
  assert counts["Relu"] == convs + 1
  assert _producer_type(graph.outputs[0]) == "FakeQuantWithMinMaxVars"  # The logits.


def test_float_graph_has_no_fake_quant():
  graph = _inference_graph(model_lib.build(hparams_lib.HParams()), quantize=False)
  assert not [op for op in graph.get_operations() if op.type.startswith("FakeQuant")]


def test_quantize_switch_tensor_matches_the_fixed_graphs(digits):
  images, _ = digits
  network = model_lib.build(hparams_lib.HParams())
  # Learn activation ranges from real digits.
  network(images, quantize=False, training=True, dropout_seed=_SEED)
  switched = tf.function(lambda x, on: network(x, quantize=on, training=False))
  float_logits = network(images, quantize=False, training=False).numpy()
  quant_logits = network(images, quantize=True, training=False).numpy()
  assert not np.allclose(float_logits, quant_logits)
  np.testing.assert_array_equal(switched(images, tf.constant(False)).numpy(), float_logits)
  np.testing.assert_array_equal(switched(images, tf.constant(True)).numpy(), quant_logits)


def test_activation_ranges_track_only_while_training(digits):
  images, _ = digits
  network = model_lib.build(hparams_lib.HParams())
  quantizers = network.activation_quantizers()
  network(images, quantize=True, training=False)
  assert [(q.min.numpy(), q.max.numpy()) for q in quantizers] == [(-6.0, 6.0)] * len(quantizers)
  network(images, quantize=False, training=True, dropout_seed=_SEED)
  for quantizer in quantizers:
    assert quantizer.min.numpy() <= 0.0 <= quantizer.max.numpy()
    assert quantizer.max.numpy() != 6.0
  # The first update takes the batch range; ReLU outputs are >= 0, so their min is exactly 0.
  assert [q.min.numpy() for q in quantizers[:-1]] == [0.0] * (len(quantizers) - 1)
  first = [q.max.numpy() for q in quantizers]
  network(images * 0.5, quantize=False, training=True, dropout_seed=_SEED)
  decay = network.ema_decay
  for quantizer, before in zip(quantizers, first, strict=True):
    assert before * decay < quantizer.max.numpy() < before  # Averaged, not replaced.


def test_weight_decay_applies_to_kernels_not_biases():
  network = model_lib.build(hparams_lib.HParams(conv_filters=(8,), dense_units=16))
  flags = dict(zip([v.name for v in network.trainable_variables],
                   model_lib.decayed_flags(network), strict=True))
  assert flags == {"qat_cnn/conv1/w:0": True, "qat_cnn/conv1/b:0": False,
                   "qat_cnn/dense1/w:0": True, "qat_cnn/dense1/b:0": False,
                   "qat_cnn/logits/w:0": True, "qat_cnn/logits/b:0": False}
