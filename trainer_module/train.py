"""The training loop: tf.GradientTape + Adam under tf.function, checkpoints, TensorBoard, export.

Both splits are held in memory as tensors; one tf.function call runs up to _MAX_STEPS_PER_CALL
steps in a tf.while_loop, slicing each batch from the epoch's shuffle inside the graph (no tf.data
iterator per epoch, no Python per step). A call ends at each summary step, so the summaries are
those of a per-step loop. Progress goes to stderr (progress.py: bar, lines or off).

TensorBoard layout under model_run_dir:
  train/  scalars loss, accuracy, learning_rate (every summary_every_steps), examples_per_second
          (per epoch); quant_ranges/<quantizer>/{min,max}; weight histograms; input_images; two
          graphs for the Graphs tab: "forward", the inference pass as exported (FakeQuant on, each
          module a box: input_quant -> conv1 -> conv1_relu_quant -> pool1 -> ... -> logits_quant),
          and "train_step", the traced multi-step training function (gradients, Adam).
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

from core import contract
from core import features
from trainer_module import data
from trainer_module import export
from trainer_module import hparams as hparams_lib
from trainer_module import model as model_lib
from trainer_module import optimizer as optimizer_lib
from trainer_module import progress as progress_lib

CHECKPOINT_SUBDIR = "checkpoints"
_NUM_LOGGED_IMAGES = 8
_PIXELS_SPEC = tf.TensorSpec([None, contract.NUM_PIXELS], tf.uint8)
_LABELS_SPEC = tf.TensorSpec([None], tf.int32)
_EVAL_BATCH = 1000
# Steps per call of the multi-step training function: few enough for a live progress bar.
_MAX_STEPS_PER_CALL = 50
FORWARD_GRAPH_TAG = "forward"  # The Graphs tab's inference graph, beside "train_step".


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
  # (seconds since this process's first epoch started, eval accuracy) after each of its epochs.
  eval_history: Tuple[Tuple[float, float], ...]
  checkpoint_dir: str


def checkpoint_dir_for(hp: hparams_lib.HParams, train_files: Sequence[str],
                       model_run_dir: str) -> str:
  if hp.checkpoint_dir:
    return os.path.join(hp.checkpoint_dir, hp.run_key(train_files))
  return os.path.join(model_run_dir, CHECKPOINT_SUBDIR)


def _shift(pixels: tf.Tensor, max_shift: int, seed: tf.Tensor) -> tf.Tensor:
  """Translates each flat uint8 image [N, 784] by its own random offset of up to max_shift pixels
  per axis (zero fill); one gather on the uint8 pixels, before scaling."""
  size = contract.IMAGE_HEIGHT
  padded_size = size + 2 * max_shift
  padded = tf.pad(tf.reshape(pixels, [-1, size, size]),
                  [[0, 0], [max_shift, max_shift], [max_shift, max_shift]])
  offsets = tf.random.stateless_uniform([tf.shape(pixels)[0], 2], seed=seed,
                                        maxval=2 * max_shift + 1, dtype=tf.int32)
  grid = tf.range(size)
  base = tf.reshape(grid[:, tf.newaxis] * padded_size + grid[tf.newaxis], [1, -1])  # [1, 784]
  indices = base + offsets[:, :1] * padded_size + offsets[:, 1:]
  return tf.gather(tf.reshape(padded, [-1, padded_size * padded_size]), indices, batch_dims=1)


def _rotate_scale(images: tf.Tensor, max_rotation: float, max_scale: float,
                  seed: tf.Tensor) -> tf.Tensor:
  """Rotates each float image [N, 28, 28, 1] by its own random angle in +-max_rotation degrees and
  scales it by its own factor in [1 - max_scale, 1 + max_scale], about the centre (bilinear, zero
  fill: the background stays 0)."""
  count = tf.shape(images)[0]
  angles = tf.random.stateless_uniform([count], seed=tf.random.experimental.stateless_fold_in(
      seed, 2), minval=-max_rotation, maxval=max_rotation) * (math.pi / 180.0)
  scales = tf.random.stateless_uniform([count], seed=tf.random.experimental.stateless_fold_in(
      seed, 3), minval=1.0 - max_scale, maxval=1.0 + max_scale)
  # The transform maps each output pixel (x, y) to the input point it samples: the inverse of
  # "rotate by angle, scale by scale" about the centre.
  cos, sin = tf.cos(angles) / scales, tf.sin(angles) / scales
  centre = (contract.IMAGE_WIDTH - 1) / 2.0
  zeros = tf.zeros_like(cos)
  transforms = tf.stack([cos, sin, centre - centre * (cos + sin), -sin, cos,
                         centre - centre * (cos - sin), zeros, zeros], axis=1)
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=images, transforms=transforms,
      output_shape=tf.constant([contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH]),
      fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="CONSTANT")


def augmented_images(pixels: tf.Tensor, hp: hparams_lib.HParams, seed: tf.Tensor) -> tf.Tensor:
  """The recipe's augmentation of one training batch, as the model sees it.

  uint8 pixels [N, 784] -> float32 images [N, 28, 28, 1] in [0, 1], each translated by its own
  random offset of up to hp.max_shift pixels per axis (none when 0), then rotated and scaled by
  its own random angle and factor (hp.max_rotation, hp.max_scale; none when both are 0). `seed`
  (int64 [2], the trainer passes [hp.seed, step]) fixes the draws, so the hand-built trainer and
  the Keras baseline (trainer_module/keras_baseline.py) given the same seed see the same images.
  """
  if hp.max_shift:
    pixels = _shift(pixels, hp.max_shift, seed)
  images = features.to_images(pixels)
  if hp.max_rotation or hp.max_scale:
    images = _rotate_scale(images, hp.max_rotation, hp.max_scale, seed)
  return images


def step_seed(hp: hparams_lib.HParams, step: tf.Tensor) -> tf.Tensor:
  """The stateless seed of a training step's augmentation and dropout: int64 [2]."""
  return tf.stack([tf.constant(hp.seed, tf.int64), tf.cast(step, tf.int64)])


def _count_correct(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels),
                               tf.float32))


def _quantize_at(hp: hparams_lib.HParams, step) -> Union[bool, tf.Tensor]:
  """Fake quant is on from step quant_delay on (the ranges track from step 0)."""
  return step >= hp.quant_delay


def _train_step_fn(network: model_lib.Network, adam: optimizer_lib.Adam, hp: hparams_lib.HParams,
                   steps_per_epoch: int, total_steps: int):
  """(uint8 pixels [N, 784], int32 labels [N]) -> one Adam step; returns (summed loss, correct
  predictions, learning rate, fake quant on). The step counter selects fake quant, the learning
  rate and the dropout/shift seeds inside the graph, so one trace serves the whole run."""
  parameters = network.trainable_variables

  def train_step(pixels, labels):
    step = adam.step.read_value()
    quantize = _quantize_at(hp, step)
    seed = step_seed(hp, step)
    images = augmented_images(pixels, hp, seed)
    lr = optimizer_lib.learning_rate(hp, step, steps_per_epoch, total_steps)
    with tf.GradientTape() as tape:
      logits = network(images, quantize=quantize, training=True, dropout_seed=seed)
      losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
      if hp.label_smoothing:  # Trains on smoothed targets; the reported loss stays the hard one.
        targets = (tf.one_hot(labels, contract.NUM_CLASSES) * (1.0 - hp.label_smoothing) +
                   hp.label_smoothing / contract.NUM_CLASSES)
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=targets,
                                                                      logits=logits))
      else:
        loss = tf.reduce_mean(losses)
    adam.apply(lr, tape.gradient(loss, parameters), parameters)
    return tf.reduce_sum(losses), _count_correct(logits, labels), lr, quantize

  return train_step


def make_train_steps(network: model_lib.Network, adam: optimizer_lib.Adam,
                     hp: hparams_lib.HParams, steps_per_epoch: int, total_steps: int):
  """Many Adam steps per call, over a split held in memory as tensors.

  (pixels uint8 [E, 784], labels int32 [E], order int32 [E] (the epoch's shuffle), first_batch,
  num_steps) -> per-step (summed loss, correct, learning rate, fake quant on), each [num_steps].
  Step k trains on the examples order[(first_batch + k) * batch_size:][:batch_size], so the batches
  are exactly those of a per-step loop over the shuffled epoch; one call replaces num_steps Python
  round trips (and the tf.data iterator per epoch that stalled in its destructor).
  """
  train_step = _train_step_fn(network, adam, hp, steps_per_epoch, total_steps)
  batch_size = hp.batch_size

  @tf.function(input_signature=[_PIXELS_SPEC, _LABELS_SPEC, tf.TensorSpec([None], tf.int32),
                                tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)],
               autograph=False)
  def train_steps(pixels, labels, order, first_batch, num_steps):
    def body(k, losses, corrects, lrs, quantized):
      start = (first_batch + k) * batch_size
      indices = order[start:start + batch_size]
      loss, correct, lr, quantize = train_step(tf.gather(pixels, indices),
                                               tf.gather(labels, indices))
      return (k + 1, losses.write(k, loss), corrects.write(k, correct), lrs.write(k, lr),
              quantized.write(k, quantize))

    arrays = [tf.TensorArray(dtype, size=num_steps)
              for dtype in (tf.float32, tf.float32, tf.float32, tf.bool)]
    # parallel_iterations=1: each step reads the variables the previous one wrote.
    outputs = tf.while_loop(lambda k, *_: k < num_steps, body, [tf.constant(0)] + arrays,
                            parallel_iterations=1)
    return tuple(array.stack() for array in outputs[1:])

  return train_steps


def _make_forward_graph(network: model_lib.Network):
  """The exported inference forward pass (fake quant on, no range tracking, no dropout), traced."""
  @tf.function(input_signature=[tf.TensorSpec(
      [None, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1], tf.float32)], autograph=False)
  def forward(images):
    return network(images, quantize=True, training=False)

  return forward


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

  pixels, labels = tf.constant(pixels), tf.constant(labels)
  count = int(labels.shape[0])

  def evaluate():
    loss_sum, correct_sum = (tf.add_n(sums) for sums in zip(*(
        eval_step(pixels[i:i + _EVAL_BATCH], labels[i:i + _EVAL_BATCH])
        for i in range(0, count, _EVAL_BATCH)), strict=True))
    return float(loss_sum) / count, float(correct_sum) / count

  return evaluate


@dataclasses.dataclass
class _Training:
  """One process's training state: the network, its optimizer and checkpoint, the compiled step
  functions and the split in memory. `step` is the next step to run (from the optimizer)."""
  hp: hparams_lib.HParams
  network: model_lib.Network
  adam: optimizer_lib.Adam
  epochs_done: tf.Variable
  manager: tf.train.CheckpointManager
  train_steps: Any
  write_step_summaries: Any
  pixels: tf.Tensor  # uint8 [N, 784]
  labels: tf.Tensor  # int32 [N]
  steps_per_epoch: int
  total_steps: int

  @property
  def num_examples(self) -> int:
    return int(self.labels.shape[0])


def _restored_training(hp: hparams_lib.HParams, train_files: Sequence[str], model_run_dir: str,
                       pixels: np.ndarray, labels: np.ndarray,
                       max_steps: Optional[int]) -> _Training:
  """Builds the network and optimizer and restores the latest epoch checkpoint, if any."""
  steps_per_epoch = math.ceil(len(labels) / hp.batch_size)
  total_steps = hp.epochs * steps_per_epoch
  if max_steps:
    total_steps = min(total_steps, max_steps)
  network = model_lib.build(hp)
  adam = optimizer_lib.Adam(network.trainable_variables, weight_decay=hp.weight_decay,
                            decayed=model_lib.decayed_flags(network))
  epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False)
  checkpoint = tf.train.Checkpoint(network=network, optimizer=adam, epochs_done=epochs_done)
  manager = tf.train.CheckpointManager(
      checkpoint, checkpoint_dir_for(hp, train_files, model_run_dir), max_to_keep=2)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).assert_consumed()
    logging.info("Resuming from %s after epoch %d (step %d).", manager.latest_checkpoint,
                 int(epochs_done.numpy()), int(adam.step.numpy()))
  return _Training(hp, network, adam, epochs_done, manager,
                   make_train_steps(network, adam, hp, steps_per_epoch, total_steps),
                   _make_step_summaries(network), tf.constant(pixels), tf.constant(labels),
                   steps_per_epoch, total_steps)


def _log_inputs_and_graph(training: _Training, writer) -> None:
  """Sample input images and the forward graph as exported (the Graphs tab), at step 0."""
  with writer.as_default():
    images = features.to_images(training.pixels[:_NUM_LOGGED_IMAGES])
    tf.summary.image("input_images", images, step=0, max_outputs=_NUM_LOGGED_IMAGES)
    tf.summary.trace_on(graph=True, profiler=False)
    _make_forward_graph(training.network)(images)
    tf.summary.trace_export(FORWARD_GRAPH_TAG, step=0)


def _train_epoch(training: _Training, epoch: int, progress: progress_lib.TrainingProgress,
                 trace: bool) -> Tuple[float, float, int]:
  """Runs the epoch's remaining steps; returns (summed loss, correct predictions, examples).

  Each call of the multi-step function ends at the next summary step (inclusive), the epoch's end
  or _MAX_STEPS_PER_CALL; `trace` records the first call's graph for TensorBoard.
  """
  hp, step = training.hp, int(training.adam.step.numpy())
  epoch_start = epoch * training.steps_per_epoch
  epoch_end = min(training.total_steps, epoch_start + training.steps_per_epoch)
  order = tf.constant(data.epoch_order(training.num_examples, hp.seed, epoch), tf.int32)
  loss_sum, correct_sum, examples = 0.0, 0.0, 0
  while step < epoch_end:
    last = min(epoch_end - 1, step + _MAX_STEPS_PER_CALL - 1,
               step + (-step) % hp.summary_every_steps)
    num_steps = last - step + 1
    if trace:
      tf.summary.trace_on(graph=True, profiler=False)
    losses, corrects, lrs, quantized = training.train_steps(
        training.pixels, training.labels, order, tf.constant(step - epoch_start),
        tf.constant(num_steps))
    if trace:
      tf.summary.trace_export("train_step", step=step)
      trace = False
    batch_examples = min(training.num_examples, (last + 1 - epoch_start) * hp.batch_size) - (
        step - epoch_start) * hp.batch_size
    if last % hp.summary_every_steps == 0:
      last_batch = batch_examples - (num_steps - 1) * hp.batch_size
      training.write_step_summaries(tf.constant(last, tf.int64), losses[-1] / last_batch,
                                    corrects[-1] / last_batch, lrs[-1], quantized[-1])
    call_loss, call_correct = float(tf.reduce_sum(losses)), float(tf.reduce_sum(corrects))
    loss_sum, correct_sum, examples = (loss_sum + call_loss, correct_sum + call_correct,
                                       examples + batch_examples)
    progress.update(batch_examples, call_loss, call_correct)
    step = last + 1
  return loss_sum, correct_sum, examples


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
  training = _restored_training(hp, train_files, model_run_dir, train_pixels, train_labels,
                                max_steps)
  logging.info("Training %s on %d examples (eval %d), %d epochs of %d steps, %d steps in all: %s",
               hp.model, len(train_labels), len(eval_labels), hp.epochs,
               training.steps_per_epoch, training.total_steps, hp)
  train_writer = tf.summary.create_file_writer(
      os.path.join(model_run_dir, contract.MODEL_RUN_TRAIN_DIR))
  eval_writer = tf.summary.create_file_writer(
      os.path.join(model_run_dir, contract.MODEL_RUN_EVAL_DIR))
  evaluate = _make_evaluation(training.network, training.adam, hp, eval_pixels, eval_labels)
  _log_inputs_and_graph(training, train_writer)

  trained_examples, trained_seconds, epoch_throughputs, eval_history = 0, 0.0, [], []
  eval_loss, eval_accuracy = evaluate()
  step, epochs_done = int(training.adam.step.numpy()), int(training.epochs_done.numpy())
  progress = progress_lib.TrainingProgress(
      total_examples=min(training.total_steps * hp.batch_size, hp.epochs * len(train_labels)),
      done_examples=min(step * hp.batch_size, epochs_done * len(train_labels)))
  for epoch in range(epochs_done, hp.epochs):
    if int(training.adam.step.numpy()) >= training.total_steps:
      break
    start = time.perf_counter()
    with train_writer.as_default():
      loss_sum, correct_sum, examples = _train_epoch(training, epoch, progress,
                                                     trace=not trained_examples)
      epoch_throughputs.append(examples / (time.perf_counter() - start))
      tf.summary.scalar("examples_per_second", epoch_throughputs[-1],
                        step=int(training.adam.step.numpy()))
    eval_loss, eval_accuracy = evaluate()
    with eval_writer.as_default():
      tf.summary.scalar("loss", eval_loss, step=int(training.adam.step.numpy()))
      tf.summary.scalar("accuracy", eval_accuracy, step=int(training.adam.step.numpy()))
    trained_examples += examples
    trained_seconds += time.perf_counter() - start
    eval_history.append((trained_seconds, eval_accuracy))
    training.epochs_done.assign(epoch + 1)
    training.manager.save(checkpoint_number=epoch + 1)
    logging.info("Epoch %d/%d: loss %.4f, train accuracy %.4f, eval accuracy %.4f, "
                 "%.0f examples/s, fake quant %s.", epoch + 1, hp.epochs, loss_sum / examples,
                 correct_sum / examples, eval_accuracy, epoch_throughputs[-1],
                 "on" if _quantize_at(hp, int(training.adam.step.numpy())) else "off")
  progress.close()
  train_writer.flush()
  eval_writer.flush()

  export.export_saved_model(training.network, serving_model_dir)
  logging.info("Exported the QAT model to %s (eval accuracy %.4f).", serving_model_dir,
               eval_accuracy)
  return TrainingResult(
      eval_accuracy=eval_accuracy, eval_loss=eval_loss, steps=int(training.adam.step.numpy()),
      epochs=int(training.epochs_done.numpy()),
      examples_per_second=trained_examples / trained_seconds if trained_seconds else 0.0,
      epoch_examples_per_second=tuple(epoch_throughputs),
      train_seconds=trained_seconds, eval_history=tuple(eval_history),
      checkpoint_dir=training.manager.directory)
