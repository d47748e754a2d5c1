"""Trainer benchmark on the full MNIST: int8 test accuracy, training time, and QAT throughput.

Trains the hand-built QAT CNN at default settings on all 60,000 training images, converts it with
components.int8_tflite and scores the int8 model on the 10,000 test images; then times the same
architecture built in Keras and made quantization-aware with tfmot's quantize_model, same batch
size, same machine. Prints a Markdown section for BENCHMARKS.md.

  .venv/bin/python benchmarks/bench_trainer.py [--config '{"epochs": 12}'] [--skip_keras]
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import tempfile
import time

from absl import logging
from ai_edge_litert.interpreter import Interpreter
import numpy as np
import tensorflow as tf

from components import contract
from components import features
from components import int8_tflite
from components.mnist_example_gen import idx
from trainer_module import data
from trainer_module import hparams as hparams_lib
from trainer_module import keras_baseline
from trainer_module import model as model_lib
from trainer_module import optimizer as optimizer_lib
from trainer_module import train

MNIST_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                         "mnist")


def load_idx(split):
  images_name, labels_name = ((idx.TRAIN_IMAGES, idx.TRAIN_LABELS) if split == "train" else
                              (idx.EVAL_IMAGES, idx.EVAL_LABELS))
  return idx.read_pair(os.path.join(MNIST_DIR, f"{images_name}.gz"),
                       os.path.join(MNIST_DIR, f"{labels_name}.gz"))


def write_examples(root):
  """Writes the full MNIST as an Examples-artifact-like dir of gzipped TFRecords."""
  for split in (contract.TRAIN_SPLIT, contract.EVAL_SPLIT):
    split_dir = os.path.join(root, f"Split-{split}")
    os.makedirs(split_dir)
    images, labels = load_idx(split)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"),
                              options) as writer:
      for image, label in zip(images, labels, strict=True):
        writer.write(features.to_tf_example(image, label).SerializeToString())


def int8_accuracy(model_bytes, images, labels):
  interpreter = Interpreter(model_content=model_bytes)
  interpreter.allocate_tensors()
  (input_details,), (output_details,) = (interpreter.get_input_details(),
                                         interpreter.get_output_details())
  scale, zero_point = input_details["quantization"]
  scaled = features.to_images(images.reshape(len(images), -1)).numpy()
  quantized = np.clip(np.round(scaled / scale) + zero_point, -128, 127).astype(np.int8)
  correct = 0
  for image, label in zip(quantized, labels, strict=True):
    interpreter.set_tensor(input_details["index"], image[np.newaxis])
    interpreter.invoke()
    correct += int(np.argmax(interpreter.get_tensor(output_details["index"])[0]) == label)
  return correct / len(labels)




def throughput_ab(hp, rounds=3):
  """Examples/s of the hand-built QAT step and of Keras + tfmot quantize_model, same CNN.

  Alternates one full epoch of each, `rounds` times, so both see the same load on a shared
  machine; returns the epoch throughputs of each. No shift augmentation on either side.
  """
  import tf_keras  # pylint: disable=g-import-not-at-top
  hp = dataclasses.replace(hp, max_shift=0)
  pixels, labels = load_idx(contract.TRAIN_SPLIT)
  pixels, labels = pixels.reshape(len(labels), -1), labels.astype(np.int32)
  steps_per_epoch = -(-len(labels) // hp.batch_size)
  network = model_lib.build(hp)
  adam = optimizer_lib.Adam(network.trainable_variables)
  train_step = train.make_train_step(network, adam, hp, steps_per_epoch,
                                     (rounds + 1) * steps_per_epoch)
  images = features.to_images(pixels).numpy()
  keras_model = keras_baseline.build_model(hp, quantize=True)
  keras_model.compile(optimizer=tf_keras.optimizers.Adam(hp.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])

  def hand_built_epoch(epoch):
    start = time.perf_counter()
    for batch_pixels, batch_labels in data.epoch_batches(pixels, labels, hp.batch_size, hp.seed,
                                                         epoch):
      train_step(batch_pixels, batch_labels)
    return len(labels) / (time.perf_counter() - start)

  def keras_epoch():
    start = time.perf_counter()
    keras_model.fit(images, labels, batch_size=hp.batch_size, epochs=1, verbose=0, shuffle=True)
    return len(labels) / (time.perf_counter() - start)

  hand_built_epoch(0)  # Tracing and warm-up, not timed.
  keras_epoch()
  hand_built, keras = [], []
  for epoch in range(1, rounds + 1):
    hand_built.append(hand_built_epoch(epoch))
    keras.append(keras_epoch())
    logging.info("A/B round %d: hand-built %.0f, Keras %.0f examples/s", epoch, hand_built[-1],
                 keras[-1])
  return hand_built, keras


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="{}", help="custom_config JSON for the trainer")
  parser.add_argument("--skip_keras", action="store_true")
  parser.add_argument("--ab_rounds", type=int, default=3)
  parser.add_argument("--work_dir", default="")
  args = parser.parse_args()
  logging.set_verbosity(logging.INFO)
  hp = hparams_lib.HParams.from_config(json.loads(args.config))
  load_before = os.getloadavg()[0]
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_trainer_")
  examples = os.path.join(work_dir, "examples")
  if not os.path.exists(examples):
    write_examples(examples)
  run_dir = tempfile.mkdtemp(dir=work_dir)

  start = time.perf_counter()
  result = train.train_and_export(
      [os.path.join(examples, "Split-train", "*")], [os.path.join(examples, "Split-eval", "*")],
      os.path.join(run_dir, "serving_model"), os.path.join(run_dir, "model_run"), hp)
  wall = time.perf_counter() - start
  test_images, test_labels = load_idx(contract.EVAL_SPLIT)
  int8 = int8_accuracy(int8_tflite.convert_to_int8_tflite(os.path.join(run_dir, "serving_model")),
                       test_images, test_labels)
  steady = statistics.median(result.epoch_examples_per_second[1:] or
                             result.epoch_examples_per_second)
  ab = None if args.skip_keras else throughput_ab(hp, args.ab_rounds)

  lines = [
      f"Run {datetime.date.today().isoformat()} on {platform.node()} ({os.cpu_count()} cores, "
      f"{platform.processor() or platform.machine()}), config "
      f"{json.dumps(json.loads(args.config))}; 1-min load average {load_before:.1f} before, "
      f"{os.getloadavg()[0]:.1f} after (the CPU is shared with other jobs):",
      "",
      "| metric | value | target |",
      "| --- | --- | --- |",
      f"| int8 TFLite test accuracy (10,000 images) | {int8:.2%} | >= 99.4 % |",
      f"| fake-quant float test accuracy | {result.eval_accuracy:.2%} | |",
      f"| int8 - float | {100 * (int8 - result.eval_accuracy):+.2f} pp | |",
      f"| training wall time ({result.epochs} epochs, load + train + eval + export) | "
      f"{wall:.0f} s | <= 240 s |",
      f"| hand-built QAT throughput in that run (median epoch after the first, shift "
      f"augmentation on) | {steady:.0f} examples/s | |",
  ]
  if ab:
    (hand_built, keras), median = ab, statistics.median
    lines += [
        f"| A/B, same CNN, batch {hp.batch_size}, {len(keras)} alternating epochs each: "
        f"hand-built QAT, median / best | {median(hand_built):.0f} / {max(hand_built):.0f} "
        "examples/s | |",
        f"| A/B: Keras + tfmot quantize_model (model.fit), median / best | {median(keras):.0f} / "
        f"{max(keras):.0f} examples/s | |",
        f"| hand-built / Keras, median / best | {median(hand_built) / median(keras):.2f}x / "
        f"{max(hand_built) / max(keras):.2f}x | >= 1.0x |",
    ]
  print("\n".join(lines))


if __name__ == "__main__":
  main()
