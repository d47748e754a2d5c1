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
from typing import Any, Mapping, Optional, Sequence, Union

from absl import logging
import numpy as np
import tensorflow as tf

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
_PIXELS_SPEC = tf.TensorSpec([None, features.NUM_PIXELS], tf.uint8)
_LABELS_SPEC = tf.TensorSpec([None], tf.int32)


@dataclasses.dataclass(frozen=True)
class TrainingResult:
  """What a run achieved, for logs and benchmarks."""
  eval_accuracy: float  # Fake-quant float accuracy on the eval split after the last epoch.
  eval_loss: float
  steps: int
  epochs: int  # Epochs completed, counting those restored from a checkpoint.
  examples_per_second: float  # Training throughput of this process's epochs (0 if none ran).
  train_seconds: float  # Wall time of this process's epochs, evaluation included.
  checkpoint_dir: str


def checkpoint_dir_for(hp: hparams_lib.HParams, train_files: Sequence[str],
                       model_run_dir: str) -> str:
  if hp.checkpoint_dir:
    return os.path.join(hp.checkpoint_dir, hp.run_key(train_files))
  return os.path.join(model_run_dir, CHECKPOINT_SUBDIR)


def _shift(images: tf.Tensor, max_shift: int, seed: tf.Tensor) -> tf.Tensor:
  """Translates each image by its own random offset of up to max_shift pixels (zero fill)."""
  size = features.IMAGE_HEIGHT
  padded = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
  offsets = tf.random.stateless_uniform([tf.shape(images)[0], 2], seed=seed,
                                        maxval=2 * max_shift + 1, dtype=tf.int32)
  rows = offsets[:, :1] + tf.range(size)[tf.newaxis]
  cols = offsets[:, 1:] + tf.range(size)[tf.newaxis]
  shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
  return tf.gather(shifted, cols, axis=2, batch_dims=1)


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
  parameters = network.trainable_variables
  adam = optimizer_lib.Adam(parameters)
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
  quantizer_names = [(q.name, q) for q in network.activation_quantizers()]

  def quantize_now():
    return adam.step >= hp.quant_delay

  def write_step_summaries(step, loss, accuracy, lr):
    tf.summary.scalar("loss", loss, step=step)
    tf.summary.scalar("accuracy", accuracy, step=step)
    tf.summary.scalar("learning_rate", lr, step=step)
    tf.summary.scalar("fake_quant_active", tf.cast(quantize_now(), tf.float32), step=step)
    for name, quantizer in quantizer_names:
      tf.summary.scalar(f"quant_ranges/{name}/min", quantizer.min, step=step)
      tf.summary.scalar(f"quant_ranges/{name}/max", quantizer.max, step=step)
    for variable in parameters:
      tf.summary.histogram(f"weights/{variable.name}", variable, step=step)

  @tf.function(input_signature=[_PIXELS_SPEC, _LABELS_SPEC])
  def train_step(pixels, labels):
    step = adam.step.read_value()
    seed = tf.stack([tf.constant(hp.seed, tf.int64), step])
    images = features.to_images(pixels)
    if hp.max_shift:
      images = _shift(images, hp.max_shift, seed)
    lr = optimizer_lib.learning_rate(hp, step, steps_per_epoch, total_steps)
    with tf.GradientTape() as tape:
      logits = network(images, quantize=quantize_now(), training=True, dropout_seed=seed)
      loss = tf.reduce_mean(
          tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    adam.apply(lr, tape.gradient(loss, parameters), parameters)
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels),
                                    tf.float32))
    with tf.summary.record_if(tf.equal(step % hp.summary_every_steps, 0)):
      write_step_summaries(step, loss, correct / tf.cast(tf.shape(labels)[0], tf.float32), lr)
    return loss * tf.cast(tf.shape(labels)[0], tf.float32), correct

  @tf.function(input_signature=[_PIXELS_SPEC, _LABELS_SPEC])
  def eval_step(pixels, labels):
    logits = network(features.to_images(pixels), quantize=quantize_now(), training=False)
    loss = tf.reduce_sum(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return loss, tf.reduce_sum(tf.cast(
        tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels), tf.float32))

  def evaluate():
    sums = np.zeros(2)
    for pixels, labels in data.eval_batches(eval_pixels, eval_labels):
      sums += [float(v) for v in eval_step(pixels, labels)]
    return sums[0] / len(eval_labels), sums[1] / len(eval_labels)

  with train_writer.as_default():
    tf.summary.image("input_images", features.to_images(train_pixels[:_NUM_LOGGED_IMAGES]),
                     step=0, max_outputs=_NUM_LOGGED_IMAGES)

  trained_examples, trained_seconds, traced = 0, 0.0, False
  eval_loss, eval_accuracy = evaluate()
  for epoch in range(int(epochs_done.numpy()), hp.epochs):
    if int(adam.step.numpy()) >= total_steps:
      break
    start = time.perf_counter()
    loss_sum = correct_sum = examples = 0.0
    with train_writer.as_default():
      for pixels, labels in data.epoch_batches(train_pixels, train_labels, hp.batch_size,
                                               hp.seed, epoch):
        if int(adam.step.numpy()) >= total_steps:
          break
        if not traced:
          tf.summary.trace_on(graph=True, profiler=False)
        loss, correct = train_step(pixels, labels)
        if not traced:
          tf.summary.trace_export("train_step", step=0)
          traced = True
        loss_sum += float(loss)
        correct_sum += float(correct)
        examples += len(labels)
      epoch_seconds = time.perf_counter() - start
      examples_per_second = examples / epoch_seconds
      tf.summary.scalar("examples_per_second", examples_per_second, step=adam.step)
    eval_loss, eval_accuracy = evaluate()
    with eval_writer.as_default():
      tf.summary.scalar("loss", eval_loss, step=adam.step)
      tf.summary.scalar("accuracy", eval_accuracy, step=adam.step)
    trained_examples += examples
    trained_seconds += time.perf_counter() - start
    epochs_done.assign(epoch + 1)
    manager.save(checkpoint_number=epoch + 1)
    logging.info("Epoch %d/%d: loss %.4f, train accuracy %.4f, eval accuracy %.4f, "
                 "%.0f examples/s, fake quant %s.", epoch + 1, hp.epochs,
                 loss_sum / max(examples, 1), correct_sum / max(examples, 1), eval_accuracy,
                 examples_per_second, "on" if bool(quantize_now()) else "off")
  train_writer.flush()
  eval_writer.flush()

  export.export_saved_model(network, serving_model_dir)
  logging.info("Exported the QAT model to %s (eval accuracy %.4f).", serving_model_dir,
               eval_accuracy)
  return TrainingResult(
      eval_accuracy=eval_accuracy, eval_loss=eval_loss, steps=int(adam.step.numpy()),
      epochs=int(epochs_done.numpy()),
      examples_per_second=trained_examples / trained_seconds if trained_seconds else 0.0,
      train_seconds=trained_seconds, checkpoint_dir=checkpoint_dir)
