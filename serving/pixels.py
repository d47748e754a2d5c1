"""The pixel checks every API applies before a prediction (TF Serving's JSON, the OIP's tensors).

Images reach the model as pixel values 0 (background) to 255 (ink), each image 28x28, 28x28x1 or
784 values, at most MAX_IMAGES per request. Integer pixels keep their integer dtype (the model
store quantizes them through a lookup table); other numbers become float64.
"""

import json
from typing import Any

import numpy as np

from core import contract
from serving import asgi

MAX_IMAGES = 256  # Per request, in either API.
IMAGE_SHAPES = ((contract.NUM_PIXELS,), (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH),
                (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1))
ACCEPTED = "each image 28x28, 28x28x1 or 784 pixel values"


def check_count(count: int, where: str) -> None:
  """Raises ApiError unless 1 <= count <= MAX_IMAGES."""
  if count < 1:
    raise asgi.ApiError(400, f"{where}: no image given")
  if count > MAX_IMAGES:
    raise asgi.ApiError(413, f"{where}: too many instances: {count} in one request, the limit "
                        f"is {MAX_IMAGES}")


def check_image_shape(shape: tuple, where: str) -> None:
  """Raises ApiError unless `shape` is [N, 28, 28], [N, 28, 28, 1] or [N, 784]."""
  if len(shape) < 2 or tuple(shape[1:]) not in IMAGE_SHAPES:
    raise asgi.ApiError(400, f"{where}: {ACCEPTED}, got shape {list(shape[1:])} (batch of "
                        f"{shape[0] if shape else 0})")
  check_count(int(shape[0]), where)


def from_nested(data: Any, where: str) -> np.ndarray:
  """Pixels [N, 28, 28] from nested JSON lists of numbers; raises ApiError naming the problem."""
  try:
    pixels = np.asarray(data)
  except (ValueError, TypeError) as e:  # Ragged nesting.
    raise asgi.ApiError(400, f"{where}: the images do not all have one shape of 28x28 or 784 "
                        f"pixel values ({e})") from e
  if pixels.dtype.kind not in "iuf":
    raise asgi.ApiError(400, f"{where}: pixel values must be numbers 0-255, found "
                        f"{_describe_non_numeric(pixels)}")
  check_image_shape(pixels.shape, where)
  return checked(pixels, where)


def checked(pixels: np.ndarray, where: str) -> np.ndarray:
  """`pixels` (numbers, N whole images) as [N, 28, 28] after the value checks: finite, 0-255."""
  if pixels.dtype.kind == "f":
    pixels = pixels.astype(np.float64, copy=False)
    if not np.isfinite(pixels).all():
      bad = pixels[~np.isfinite(pixels)][0]
      raise asgi.ApiError(400, f"{where}: pixel values must be finite numbers 0-255, found {bad}")
  if pixels.dtype != np.uint8:
    low, high = pixels.min(), pixels.max()
    if low < 0 or high > contract.MAX_PIXEL_VALUE:
      value = low if low < 0 else high
      raise asgi.ApiError(400, f"{where}: pixel values must be 0-255, found {value:g}")
  return pixels.reshape(-1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH)


def _describe_non_numeric(pixels: np.ndarray) -> str:
  if pixels.dtype.kind == "b":
    return "true/false"
  for value in pixels.ravel():
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      return f"{type(value).__name__} {json.dumps(value, default=str)[:40]}"
  return pixels.dtype.name
