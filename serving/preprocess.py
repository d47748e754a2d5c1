"""Turns a PNG/JPEG of a digit, of any size, into a 28x28 uint8 MNIST-style image (no TensorFlow).

MNIST's own preprocessing (LeCun, Cortes, Burges, "The MNIST database", yann.lecun.com/exdb/mnist):
the digit was size-normalized to fit a 20x20 box preserving its aspect ratio (anti-aliasing gives
grey levels), then centred in a 28x28 field by its centre of mass. Here, before that: grayscale
(transparent areas become white paper), background removed (its level is the median of the
border), inverted when the digit is dark on light, so ink is bright on 0 as in MNIST, and
stretched to full contrast (the brightest ink 255).
"""

import io
from typing import Tuple

import numpy as np
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

from core import contract

FORMATS = ("PNG", "JPEG")
# Pillow's modes of 16-bit grayscale PNGs ("I" in Pillow before 10, "I;16*" since).
SIXTEEN_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I")
MAX_IMAGE_PIXELS = 16_000_000  # Width x height; larger is refused before decoding.
DIGIT_BOX = 20  # The digit is scaled to fit DIGIT_BOX x DIGIT_BOX (MNIST).
# Pixels brighter than this fraction of the brightest, after background removal, are ink (for
# the bounding box only; the grey levels are kept).
INK_FRACTION = 0.2


class ImageError(ValueError):
  """The upload is not a usable image; `status` is the HTTP status that fits."""

  def __init__(self, message: str, status: int = 422):
    super().__init__(message)
    self.status = status


def decode(content: bytes) -> Image.Image:
  """Opens PNG/JPEG bytes as grayscale 'L' (alpha over white); raises ImageError."""
  if not content:
    raise ImageError("the image is empty (0 bytes)", 400)
  try:
    image = Image.open(io.BytesIO(content))
  except Image.DecompressionBombError as e:  # Pillow's own limit, far above ours.
    raise ImageError(f"image too large: {e}", 413) from e
  except UnidentifiedImageError as e:  # Its message shows the BytesIO object's repr.
    raise ImageError(f"not a PNG or JPEG image (no image format starts with the bytes "
                     f"{content[:8].hex(' ')} of these {len(content):,})", 415) from e
  except (OSError, SyntaxError, ValueError) as e:
    raise ImageError(f"not a PNG or JPEG image ({e})", 415) from e
  if image.format not in FORMATS:
    raise ImageError(f"image format {image.format} is not supported (PNG or JPEG)", 415)
  width, height = image.size
  if width * height > MAX_IMAGE_PIXELS:  # Checked on the header, before any pixel is decoded.
    raise ImageError(f"image is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} "
                     "pixel limit", 413)
  try:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
      rgba = image.convert("RGBA")
      white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
      image = Image.alpha_composite(white, rgba)
    if image.mode in SIXTEEN_BIT_GRAY:
      return _gray16_to_8(image)
    return image.convert("L")
  except (OSError, SyntaxError, ValueError) as e:  # Truncated or corrupt pixel data.
    raise ImageError(f"corrupt {image.format} image: {e}") from e


def _gray16_to_8(image: Image.Image) -> Image.Image:
  """A 16-bit grayscale image scaled to 8 bits (65535 -> 255). Pillow's convert("L") clips such
  images at 255 instead (python-pillow/Pillow#3011): every level above 255 of 65535, i.e. nearly
  all of a scan, becomes white, and dark ink on light paper turns blank."""
  levels = np.asarray(image, np.float64)
  return Image.fromarray(np.clip(np.rint(levels / 257), 0, 255).astype(np.uint8), "L")


def _centre_of_mass(pixels: np.ndarray) -> Tuple[float, float]:
  rows, cols = np.indices(pixels.shape)
  total = pixels.sum()
  return float((rows * pixels).sum() / total), float((cols * pixels).sum() / total)


def to_mnist(image: Image.Image) -> np.ndarray:
  """uint8 [28, 28], ink bright on 0, like an MNIST digit; raises ImageError when blank."""
  pixels = np.asarray(image, np.float32)
  border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
  background = float(np.median(border))
  if background > contract.MAX_PIXEL_VALUE / 2:  # Dark ink on light paper: invert.
    pixels, background = contract.MAX_PIXEL_VALUE - pixels, contract.MAX_PIXEL_VALUE - background
  ink = np.clip(pixels - background, 0, None)
  peak = float(ink.max())
  if peak <= 0:
    raise ImageError("the image is blank: no digit found")
  rows = np.flatnonzero((ink > INK_FRACTION * peak).any(axis=1))
  cols = np.flatnonzero((ink > INK_FRACTION * peak).any(axis=0))
  crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] * (contract.MAX_PIXEL_VALUE / peak)
  height, width = crop.shape
  scale = DIGIT_BOX / max(height, width)
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  digit = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize(size, Image.LANCZOS),
                     np.float32)
  out = np.zeros((contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH), np.float32)
  if digit.sum() <= 0:
    raise ImageError("the image is blank: no digit found")
  row_mass, col_mass = _centre_of_mass(digit)
  top = int(round(contract.IMAGE_HEIGHT / 2 - row_mass))
  left = int(round(contract.IMAGE_WIDTH / 2 - col_mass))
  # Paste with clipping (a lopsided digit may be shifted partly past the edge, as in MNIST).
  r0, c0 = max(top, 0), max(left, 0)
  r1 = min(top + digit.shape[0], contract.IMAGE_HEIGHT)
  c1 = min(left + digit.shape[1], contract.IMAGE_WIDTH)
  out[r0:r1, c0:c1] = digit[r0 - top:r1 - top, c0 - left:c1 - left]
  out *= contract.MAX_PIXEL_VALUE / out.max()  # Full contrast: MNIST's strokes peak at 255.
  return np.clip(np.rint(out), 0, contract.MAX_PIXEL_VALUE).astype(np.uint8)


def image_to_mnist(content: bytes) -> np.ndarray:
  """PNG/JPEG bytes -> uint8 [28, 28]; raises ImageError (with an HTTP status)."""
  return to_mnist(decode(content))
