"""MNIST-style preprocessing of uploaded images (no model): inversion, crop, 20x20 box, centring."""

import io

import numpy as np
from PIL import Image
import pytest

from serving import preprocess
from tests import fixtures_model


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format=fmt)
  return buffer.getvalue()


def centre_of_mass(pixels: np.ndarray):
  rows, cols = np.indices(pixels.shape)
  total = pixels.sum()
  return (rows * pixels).sum() / total, (cols * pixels).sum() / total


def ink_box(pixels: np.ndarray):
  rows = np.flatnonzero(pixels.any(axis=1))
  cols = np.flatnonzero(pixels.any(axis=0))
  return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_large_dark_on_light_digit_becomes_an_mnist_digit(fmt):
  digit = fixtures_model.slice_eval_digits()[0][0]
  big = np.kron(digit, np.ones((9, 9), np.uint8))
  paper = np.full((400, 300), 240, np.uint8)
  paper[20:20 + big.shape[0], 10:10 + big.shape[1]] -= (big * (200 / 255)).astype(np.uint8)
  pixels = preprocess.image_to_mnist(encode(Image.fromarray(paper), fmt))
  assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
  assert pixels.max() >= 250 and pixels[0].max() == 0  # Bright ink on a black background.
  assert max(ink_box(pixels > 10)) <= preprocess.DIGIT_BOX + 1
  row, col = centre_of_mass(pixels.astype(np.float64))
  assert abs(row - 14) <= 0.75 and abs(col - 14) <= 0.75
  # Close to the original MNIST digit (itself preprocessed this way by MNIST's authors).
  assert np.corrcoef(pixels.ravel(), digit.ravel())[0, 1] > 0.8


def test_black_strokes_on_a_transparent_canvas_are_ink():
  rgba = np.zeros((100, 100, 4), np.uint8)
  rgba[20:80, 45:55] = (0, 0, 0, 255)  # A "1" drawn on a transparent canvas.
  pixels = preprocess.image_to_mnist(encode(Image.fromarray(rgba, "RGBA")))
  assert ink_box(pixels > 10)[0] == preprocess.DIGIT_BOX
  assert pixels[14, 14] > 200


@pytest.mark.parametrize("content, status, message", [
    (b"", 400, "the image is empty"),
    (b"GIF89a", 415, "not a PNG or JPEG image .no image format starts with the bytes "
     "47 49 46 38 39 61 of these 6."),
    (encode(Image.new("L", (4, 4)), "BMP"), 415, "format BMP is not supported"),
    (encode(Image.new("L", (40, 40), 255)), 422, "blank"),
    (encode(Image.new("L", (4001, 4000))), 413, "4001x4000 pixels"),
])
def test_unusable_images_raise_with_an_http_status(content, status, message):
  with pytest.raises(preprocess.ImageError, match=message) as raised:
    preprocess.image_to_mnist(content)
  assert raised.value.status == status
  assert " object at 0x" not in str(raised.value)  # Pillow's message shows a BytesIO's repr.


def test_a_16_bit_grayscale_scan_is_scaled_to_8_bits_not_clipped():
  """Pillow's convert("L") clips 16-bit grayscale at 255 (python-pillow/Pillow#3011): a 16-bit scan
  of dark ink on light paper, every level above 255 of 65535, came out white and "blank"."""
  digit = fixtures_model.slice_eval_digits()[0][0]
  big = np.kron(digit, np.ones((6, 6), np.uint8)).astype(np.float64)
  paper = np.full((big.shape[0] + 40, big.shape[1] + 40), 60000.0)
  paper[20:-20, 20:-20] -= big / 255 * 52000  # Ink down to 8,000 of 65,535: still "above 255".
  scan16 = Image.fromarray(paper.astype(np.uint16))
  scan8 = Image.fromarray(np.rint(paper / 257).astype(np.uint8))
  assert Image.open(io.BytesIO(encode(scan16))).mode.startswith("I")  # Pillow's 16-bit mode.
  pixels16 = preprocess.image_to_mnist(encode(scan16))
  pixels8 = preprocess.image_to_mnist(encode(scan8))
  assert np.abs(pixels16.astype(int) - pixels8).max() <= 1
  assert np.corrcoef(pixels16.ravel(), digit.ravel())[0, 1] > 0.8
