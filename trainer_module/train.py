"""The training loop: tf.GradientTape + Adam under tf.function, checkpoints, TensorBoard, export.

TensorBoard layout under model_run_dir:
  train/  scalars loss, accuracy, learning_rate (every summary_every_steps), examples_per_second
          (per epoch); quant_ranges/<quantizer>/{min,max}; weight histograms; input_images; the
          traced train_step graph (Graphs tab, FakeQuant ops included).
  eval/   scalars loss, accuracy per epoch (fake quant as at that step).
"""

import dataclasses
import math
import os
import time
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

from absl import logging
import numpy as np
import tensorflow as tf

from components import contract
from components import features
from trainer_module import data
from trainer_module import export
from trainer_module import hparams as hparams_lib
from trainer_module import model as model_lib
from trainer_module import optimizer as optimizer_lib

TRAIN_LOG_SUBDIR = "train"
EVAL_LOG_SUBDIR = "eval"
CHECKPOINT_SUBDIR = "checkpoints"
_NUM_LOGGED_IMAGES = 8
_PIXELS_SPEC = tf.TensorSpec([None, contract.NUM_PIXELS], tf.uint8)
_LABELS_SPEC = tf.TensorSpec([None], tf.int32)


@dataclasses.dataclass(frozen=True)
class TrainingResult:
  """What a run achieved, for logs and benchmarks."""
  eval_accuracy: float  # Fake-quant float accuracy on the eval split after the last epoch.
  eval_loss: float
  steps: int
  epochs: int  # Epochs completed, counting those restored from a checkpoint.
  examples_per_second: float  # Training throughput of this process's epochs (0 if none ran).
  epoch_examples_per_second: Tuple[float, ...]  # Per epoch run by this process (first: tracing).
  train_seconds: float  # Wall time of this process's epochs, evaluation included.
  checkpoint_dir: str


def checkpoint_dir_for(hp: hparams_lib.HParams, train_files: Sequence[str],
                       model_run_dir: str) -> str:
  if hp.checkpoint_dir:
    return os.path.join(hp.checkpoint_dir, hp.run_key(train_files))
  return os.path.join(model_run_dir, CHECKPOINT_SUBDIR)


def _shift(images: tf.Tensor, max_shift: int, seed: tf.Tensor) -> tf.Tensor:
  """Translates each image by its own random offset of up to max_shift pixels (zero fill)."""
  size = contract.IMAGE_HEIGHT
  padded = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
  offsets = tf.random.stateless_uniform([tf.shape(images)[0], 2], seed=seed,
                                        maxval=2 * max_shift + 1, dtype=tf.int32)
  rows = offsets[:, :1] + tf.range(size)[tf.newaxis]
  cols = offsets[:, 1:] + tf.range(size)[tf.newaxis]
  shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
  return tf.gather(shifted, cols, axis=2, batch_dims=1)


def _count_correct(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels),
                               tf.float32))


def _quantize_at(hp: hparams_lib.HParams, step) -> Union[bool, tf.Tensor]:
  """Fake quant is on from step quant_delay on (the ranges track from step 0)."""
  return step >= hp.quant_delay


def make_train_step(network: model_lib.Network, adam: optimizer_lib.Adam,
                    hp: hparams_lib.HParams, steps_per_epoch: int, total_steps: int):
  """One traced Adam step: (uint8 pixels [N, 784], labels [N]) -> (summed loss, correct
  predictions, learning rate, fake quant on); the step counter selects fake quant, the learning
  rate and the dropout/shift seeds inside the graph, so one trace serves the whole run."""
  parameters = network.trainable_variables

  # autograph=False: the step has no data-dependent Python control flow, and tracing is faster.
  @tf.function(input_signature=[_PIXELS_SPEC, _LABELS_SPEC], autograph=False)
  def train_step(pixels, labels):
    step = adam.step.read_value()
    quantize = _quantize_at(hp, step)
    seed = tf.stack([tf.constant(hp.seed, tf.int64), step])
    images = features.to_images(pixels)
    if hp.max_shift:
      images = _shift(images, hp.max_shift, seed)
    lr = optimizer_lib.learning_rate(hp, step, steps_per_epoch, total_steps)
    with tf.GradientTape() as tape:
      logits = network(images, quantize=quantize, training=True, dropout_seed=seed)
      losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
      loss = tf.reduce_mean(losses)
    adam.apply(lr, tape.gradient(loss, parameters), parameters)
    return tf.reduce_sum(losses), _count_correct(logits, labels), lr, quantize

  return train_step


def _make_step_summaries(network: model_lib.Network):
  """(step, loss, accuracy, lr, quantize) -> writes the step's scalars, ranges and histograms."""
  quantizers = network.activation_quantizers()

  @tf.function(autograph=False)
  def write_step_summaries(step, loss, accuracy, lr, quantize):
    # A constant record_if: the caller picks the steps, and the graph needs no cond per summary.
    with tf.summary.record_if(True):
      tf.summary.scalar("loss", loss, step=step)
      tf.summary.scalar("accuracy", accuracy, step=step)
      tf.summary.scalar("learning_rate", lr, step=step)
      tf.summary.scalar("fake_quant_active", tf.cast(quantize, tf.float32), step=step)
      for quantizer in quantizers:
        tf.summary.scalar(f"quant_ranges/{quantizer.name}/min", quantizer.min, step=step)
        tf.summary.scalar(f"quant_ranges/{quantizer.name}/max", quantizer.max, step=step)
      for variable in network.trainable_variables:
        tf.summary.histogram(f"weights/{variable.name.split(':')[0]}", variable, step=step)

  return write_step_summaries


def _make_evaluation(network: model_lib.Network, adam: optimizer_lib.Adam,
                     hp: hparams_lib.HParams, pixels: np.ndarray, labels: np.ndarray):
  """() -> (mean loss, accuracy) on the eval split, fake quant as at the current step."""
  @tf.function(input_signature=[_PIXELS_SPEC, _LABELS_SPEC], autograph=False)
  def eval_step(batch_pixels, batch_labels):
    logits = network(features.to_images(batch_pixels), quantize=_quantize_at(hp, adam.step),
                     training=False)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=batch_labels, logits=logits)
    return tf.reduce_sum(losses), _count_correct(logits, batch_labels)

  def evaluate():
    loss_sum, correct_sum = (tf.add_n(sums) for sums in zip(*(
        eval_step(*batch) for batch in data.eval_batches(pixels, labels)), strict=True))
    return float(loss_sum) / len(labels), float(correct_sum) / len(labels)

  return evaluate


def train_and_export(train_files: Sequence[str], eval_files: Sequence[str],
                     serving_model_dir: str, model_run_dir: str,
                     hparams: Union[hparams_lib.HParams, Mapping[str, Any], None] = None,
                     max_steps: Optional[int] = None) -> TrainingResult:
  """Trains the QAT network on the TFRecords matching train_files, exports it, returns metrics.

  Resumes from the latest epoch checkpoint in the run's checkpoint dir. `max_steps` (the
  TrainArgs' num_steps) caps the total steps; the learning-rate schedule spans the capped run.
  """
  hp = (hparams if isinstance(hparams, hparams_lib.HParams)
        else hparams_lib.HParams.from_config(hparams))
  train_pixels, train_labels = data.load_split(train_files)
  eval_pixels, eval_labels = data.load_split(eval_files)
  steps_per_epoch = math.ceil(len(train_labels) / hp.batch_size)
  total_steps = hp.epochs * steps_per_epoch
  if max_steps:
    total_steps = min(total_steps, max_steps)
  logging.info("Training %s on %d examples (eval %d), %d epochs of %d steps, %d steps in all: %s",
               hp.model, len(train_labels), len(eval_labels), hp.epochs, steps_per_epoch,
               total_steps, hp)

  network = model_lib.build(hp)
  adam = optimizer_lib.Adam(network.trainable_variables)
  epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False)
  checkpoint = tf.train.Checkpoint(network=network, optimizer=adam, epochs_done=epochs_done)
  checkpoint_dir = checkpoint_dir_for(hp, train_files, model_run_dir)
  manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).assert_consumed()
    logging.info("Resuming from %s after epoch %d (step %d).", manager.latest_checkpoint,
                 int(epochs_done.numpy()), int(adam.step.numpy()))

  train_writer = tf.summary.create_file_writer(os.path.join(model_run_dir, TRAIN_LOG_SUBDIR))
  eval_writer = tf.summary.create_file_writer(os.path.join(model_run_dir, EVAL_LOG_SUBDIR))
  train_step = make_train_step(network, adam, hp, steps_per_epoch, total_steps)
  write_step_summaries = _make_step_summaries(network)
  evaluate = _make_evaluation(network, adam, hp, eval_pixels, eval_labels)

  with train_writer.as_default():
    tf.summary.image("input_images", features.to_images(train_pixels[:_NUM_LOGGED_IMAGES]),
                     step=0, max_outputs=_NUM_LOGGED_IMAGES)

  trained_examples, trained_seconds, epoch_throughputs = 0, 0.0, []
  eval_loss, eval_accuracy = evaluate()
  step = int(adam.step.numpy())
  for epoch in range(int(epochs_done.numpy()), hp.epochs):
    if step >= total_steps:
      break
    start = time.perf_counter()
    loss_sum, correct_sum, examples = tf.constant(0.0), tf.constant(0.0), 0
    with train_writer.as_default():
      for pixels, labels in data.epoch_batches(train_pixels, train_labels, hp.batch_size,
                                               hp.seed, epoch):
        if step >= total_steps:
          break
        trace = not trained_examples and not examples  # The first step of this process.
        if trace:
          tf.summary.trace_on(graph=True, profiler=False)
        loss, correct, lr, quantize = train_step(pixels, labels)
        if trace:
          tf.summary.trace_export("train_step", step=step)
        if step % hp.summary_every_steps == 0:
          write_step_summaries(tf.constant(step, tf.int64), loss / len(labels),
                               correct / len(labels), lr, quantize)
        loss_sum, correct_sum = loss_sum + loss, correct_sum + correct
        examples += len(labels)
        step += 1
      epoch_seconds = time.perf_counter() - start
      epoch_throughputs.append(examples / epoch_seconds)
      tf.summary.scalar("examples_per_second", epoch_throughputs[-1], step=step)
    eval_loss, eval_accuracy = evaluate()
    with eval_writer.as_default():
      tf.summary.scalar("loss", eval_loss, step=step)
      tf.summary.scalar("accuracy", eval_accuracy, step=step)
    trained_examples += examples
    trained_seconds += time.perf_counter() - start
    epochs_done.assign(epoch + 1)
    manager.save(checkpoint_number=epoch + 1)
    logging.info("Epoch %d/%d: loss %.4f, train accuracy %.4f, eval accuracy %.4f, "
                 "%.0f examples/s, fake quant %s.", epoch + 1, hp.epochs,
                 float(loss_sum) / examples, float(correct_sum) / examples, eval_accuracy,
                 epoch_throughputs[-1], "on" if _quantize_at(hp, step) else "off")
  train_writer.flush()
  eval_writer.flush()

  export.export_saved_model(network, serving_model_dir)
  logging.info("Exported the QAT model to %s (eval accuracy %.4f).", serving_model_dir,
               eval_accuracy)
  return TrainingResult(
      eval_accuracy=eval_accuracy, eval_loss=eval_loss, steps=int(adam.step.numpy()),
      epochs=int(epochs_done.numpy()),
      examples_per_second=trained_examples / trained_seconds if trained_seconds else 0.0,
      epoch_examples_per_second=tuple(epoch_throughputs),
      train_seconds=trained_seconds, checkpoint_dir=checkpoint_dir)
