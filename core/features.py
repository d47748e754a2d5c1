"""The TensorFlow side of the data contract: the feature spec and the pixel scaling.

The names, shapes and signature names themselves are in `core/contract.py` (no TensorFlow).
"""

from typing import Dict

import numpy as np
import tensorflow as tf

from core import contract

# Pixels are int64 0-255, row-major; the label is the digit 0-9.
FEATURE_SPEC: Dict[str, tf.io.FixedLenFeature] = {
    contract.IMAGE_KEY: tf.io.FixedLenFeature([contract.NUM_PIXELS], tf.int64),
    contract.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
}


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
  """Maps int pixels 0-255 (any shape, any int dtype) to float32 [0, 1], same shape.

  The model's input quantizer covers [0, 1], so the int8 input scale is exactly 1/255 and the zero
  point -128: a device feeds `pixel - 128` with no rounding.
  """
  return tf.cast(pixels, tf.float32) / float(contract.MAX_PIXEL_VALUE)


def to_images(pixels: tf.Tensor) -> tf.Tensor:
  """Reshapes flat int pixels [N, 784] to scaled float32 images [N, 28, 28, 1] in [0, 1]."""
  return tf.reshape(scale_pixels(pixels),
                    [-1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1])


def to_tf_example(image: np.ndarray, label: int) -> tf.train.Example:
  """Builds one tf.Example from a uint8 image [28, 28] and its label 0-9."""
  # A Python list fills the repeated field about twice as fast as a numpy array.
  pixels = np.asarray(image, np.int64).reshape(-1).tolist()
  return tf.train.Example(features=tf.train.Features(feature={
      contract.IMAGE_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=pixels)),
      contract.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
  }))
