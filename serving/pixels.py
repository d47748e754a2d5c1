"""The pixel checks every API applies before a prediction (TF Serving's JSON, the OIP's tensors).

Images reach the model as pixel values 0 (background) to 255 (ink), each image 28x28, 28x28x1 or
784 values, at most MAX_IMAGES per request. Integer pixels keep their integer dtype (the model
store quantizes them through a lookup table); other numbers become float64.
"""

import json
from typing import Any, List, Optional, Tuple

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


def _shape_words(item: Any) -> Tuple[Optional[tuple], str]:
  """(the shape of a JSON value, or None when ragged; the shape in words: "is 28x28", "has 784
  values", "has rows of different lengths")."""
  try:
    shape = np.shape(item)
  except ValueError:  # numpy refuses ragged nesting.
    return None, "has rows of different lengths"
  if not shape:
    return shape, "is a single number"
  if len(shape) == 1:
    return shape, f"has {shape[0]} values"
  return shape, "is " + "x".join(str(d) for d in shape)


def _uneven(items: Any, noun: str) -> str:
  """Why the JSON list `items`, which numpy refused as ragged, is not one regular array, in the
  API's terms: "image 0 is 28x28, image 1 has 784 values" (`noun` "image")."""
  if not isinstance(items, list) or not items:
    return "the values are nested unevenly"
  first_shape, first_words = _shape_words(items[0])
  if first_shape is None:
    return f"{noun} 0 {first_words}"
  for i, item in enumerate(items[1:], 1):
    shape, words = _shape_words(item)
    if shape != first_shape:
      return f"{noun} 0 {first_words}, {noun} {i} {words}"
  return "the values are nested unevenly"


def regular_array(data: Any, rule: str, noun: str) -> np.ndarray:
  """`data` (nested JSON lists) as one numpy array; when numpy refuses it as ragged, ApiError 400
  "<rule>, but <noun> 0 is 28x28, <noun> 1 has 784 values" instead of numpy's own message, which
  speaks of its internals."""
  try:
    return np.asarray(data)
  except (ValueError, TypeError) as e:
    raise asgi.ApiError(400, f"{rule}, but {_uneven(data, noun)}") from e


def from_nested(data: List[Any], where: str) -> np.ndarray:
  """Pixels [N, 28, 28] from nested JSON lists of numbers; raises ApiError naming the problem."""
  pixels = regular_array(data, f"{where}: the images must all have one shape ({ACCEPTED})",
                         "image")
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
