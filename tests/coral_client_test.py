"""A Coral client on the pushed CPU model: pycoral's adapters played on LiteRT, both I/O types.

What Coral's tools do with a pushed version, step by step, against the project's own runtime
(core.int8_runtime) on real MNIST test digits. pycoral cannot be installed here (its wheels come
from Coral's own package index, and `pycoral` on PyPI is an unrelated project), so its steps are
re-enacted from its source, google-coral/pycoral at 46f06c8 (the last release's tree):
  * pycoral/adapters/common.py `set_input`: writes the data into a numpy view of input tensor 0's
    first image (`input_tensor(interpreter)[:, :] = data`), with no conversion: numpy's assignment
    casts uint8 pixels into an int8 tensor modulo 256, so pixel 200 becomes -56;
  * pycoral/adapters/classify.py `get_scores` / `get_classes`: output 0 flattened, dequantized as
    scale * (q - zero_point) when it is an integer tensor, the top class by `np.argpartition`;
  * pycoral/utils/dataset.py `read_label_file`: "ID LABEL" lines, else the line number is the id;
  * examples/classify_image.py: refuses any input but uint8, converts the image to RGB, and copies
    it unchanged when |scale * input_std - 1| < 1e-5 and |input_mean - zero_point| < 1e-5.
LiteRT's Interpreter has the API of tflite_runtime's, which pycoral wraps.
"""

import re
from typing import Dict

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest

from core import contract
from core import int8_runtime
from core import push_manifest
from tests import mnist_slices
from tests import pusher_runs

NUM_DIGITS = 1000  # Real MNIST test digits.


@pytest.fixture(scope="module")
def pushed(trained_model_dir, tmp_path_factory) -> Dict[str, str]:
  """{io dtype: DEST/1 of the slice model pushed with that input and output type}."""
  return {io_dtype: pusher_runs.push_slice_model(tmp_path_factory.mktemp(f"pushed_{io_dtype}"),
                                                 trained_model_dir, io_dtype)
          for io_dtype in contract.IO_DTYPES}


@pytest.fixture(scope="module")
def digits():
  images, labels = mnist_slices.load_full(contract.EVAL_SPLIT)
  return images[:NUM_DIGITS], labels[:NUM_DIGITS]


def coral_interpreter(version_dir: str) -> Interpreter:
  interpreter = Interpreter(model_path=f"{version_dir}/{push_manifest.MODEL_FILE}")
  interpreter.allocate_tensors()
  return interpreter


def coral_set_input(interpreter: Interpreter, data: np.ndarray) -> None:
  """common.set_input: numpy assignment into the view of input 0's first image, no conversion."""
  index = interpreter.get_input_details()[0]["index"]
  interpreter.tensor(index)()[0][:, :] = data


def coral_classes(interpreter: Interpreter, top_k: int = 1):
  """classify.get_classes: [(class id, score)] by score, scores dequantized as get_scores does."""
  detail = interpreter.get_output_details()[0]
  output = interpreter.tensor(detail["index"])().flatten()
  scores = output.copy()
  if np.issubdtype(detail["dtype"], np.integer):
    scale, zero_point = detail["quantization"]
    scores = scale * (output.astype(np.int64) - zero_point)
  top = np.argpartition(scores, -top_k)[-top_k:]
  return sorted(((int(i), float(scores[i])) for i in top), key=lambda c: c[1], reverse=True)


def read_label_file(path: str) -> Dict[int, str]:
  """dataset.read_label_file's parsing."""
  labels = {}
  with open(path, encoding="utf-8") as f:
    for row, content in enumerate(f.readlines()):
      pair = re.split(r"[:\s]+", content.strip(), maxsplit=1)
      if len(pair) == 2 and pair[0].strip().isdigit():
        labels[int(pair[0])] = pair[1].strip()
      else:
        labels[row] = content.strip()
  return labels


def coral_answers(version_dir: str, images: np.ndarray):
  """[(top class, its score)] for each image, pycoral's way: raw pixels in, get_classes out."""
  interpreter = coral_interpreter(version_dir)
  answers = []
  for image in images:
    coral_set_input(interpreter, image[..., None])  # [28, 28] -> the tensor's [28, 28, 1].
    interpreter.invoke()
    answers.append(coral_classes(interpreter)[0])
  return answers


def test_labels_file_reads_back_as_the_manifest_labels(pushed):
  for version_dir in pushed.values():
    manifest = push_manifest.from_json(open(f"{version_dir}/{push_manifest.FILE_NAME}",
                                            "rb").read())
    assert push_manifest.LABELS_FILE in manifest.files  # Hashed, so serving verifies it.
    assert read_label_file(f"{version_dir}/{push_manifest.LABELS_FILE}") == dict(
        enumerate(manifest.labels)) == dict(enumerate(contract.LABELS))


def test_uint8_model_gives_pycorals_raw_pixels_the_projects_answers(pushed, digits):
  version_dir = pushed[contract.UINT8_IO]
  images, labels = digits
  interpreter = coral_interpreter(version_dir)
  [input_detail] = interpreter.get_input_details()
  assert np.dtype(input_detail["dtype"]) == np.uint8  # classify_image.py's requirement.
  scale, zero_point = input_detail["quantization"]
  # classify_image.py copies the image unchanged with --input_mean 0 --input_std 255; its
  # defaults (128, 128) would rescale the pixels instead.
  assert abs(scale * 255 - 1) < 1e-5 and abs(0 - zero_point) < 1e-5
  assert not (abs(scale * 128 - 1) < 1e-5 and abs(128 - zero_point) < 1e-5)

  answers = coral_answers(version_dir, images)
  with open(f"{version_dir}/{push_manifest.MODEL_FILE}", "rb") as f:
    probabilities = int8_runtime.Int8Classifier(f.read()).predict_pixels(images)
  for (coral_class, coral_score), expected in zip(answers, probabilities, strict=True):
    # The same dequantized scores; with a tie for the top score pycoral may pick either class.
    assert coral_score == pytest.approx(float(expected.max()), abs=1e-6)
    assert expected[coral_class] == expected.max()
  # The same digits right, up to the images whose top score is tied (counts, not float ratios).
  ties = sum(int((row == row.max()).sum() > 1) for row in probabilities)
  coral_right = int(np.sum([c for c, _ in answers] == labels))
  assert abs(coral_right - int(np.sum(probabilities.argmax(axis=1) == labels))) <= ties
  assert coral_right > 0.8 * NUM_DIGITS  # A trained model, on real digits.


def test_int8_model_is_wrong_with_pycorals_raw_copy_which_is_why_uint8_ships(pushed, digits):
  version_dir = pushed[contract.INT8_IO]
  images, labels = digits
  interpreter = coral_interpreter(version_dir)
  [input_detail] = interpreter.get_input_details()
  assert np.dtype(input_detail["dtype"]) == np.int8  # classify_image.py refuses this model.
  # set_input's raw copy: 200 lands as -56, where the model expects 200 - 128 = 72.
  image = images[0].copy()
  image[0, 0] = 200
  coral_set_input(interpreter, image[..., None])
  written = interpreter.tensor(input_detail["index"])()[0]
  assert written[0, 0, 0] == -56
  with open(f"{version_dir}/{push_manifest.MODEL_FILE}", "rb") as f:
    classifier = int8_runtime.Int8Classifier(f.read())
  assert classifier.quantize_pixels(image)[0, 0, 0, 0] == 72
  # Background 0 becomes 0 instead of -128 and ink wraps negative: the answers are garbage, while
  # the same model with its own quantization (the project's runtime) is right.
  raw_accuracy = np.mean([c for c, _ in coral_answers(version_dir, images)] == labels)
  quantized_accuracy = np.mean(classifier.predict_pixels(images).argmax(axis=1) == labels)
  assert quantized_accuracy > 0.8
  assert raw_accuracy < quantized_accuracy - 0.5


def test_classify_images_rgb_conversion_does_not_fit_a_1_channel_model(pushed, digits):
  """classify_image.py converts every image to RGB; set_input cannot put 3 channels into the
  model's one, so a client of this model calls the adapters itself with the [28, 28, 1] pixels."""
  images, _ = digits
  interpreter = coral_interpreter(pushed[contract.UINT8_IO])
  rgb = np.repeat(images[0][..., None], 3, axis=-1)
  with pytest.raises(ValueError, match="could not broadcast"):
    coral_set_input(interpreter, rgb)
