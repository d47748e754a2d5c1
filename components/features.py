"""The one definition of the data and model interface every component and the trainer share.

MnistExampleGen writes these features, the curated schema describes them, the trainer parses them,
and the evaluator and pusher call the exported signatures named here.
"""

from typing import Dict

import numpy as np
import tensorflow as tf

IMAGE_KEY = "image"
LABEL_KEY = "label"

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH
NUM_CLASSES = 10
MAX_PIXEL_VALUE = 255

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"

# Pixels are int64 0-255, row-major; the label is the digit 0-9.
FEATURE_SPEC: Dict[str, tf.io.FixedLenFeature] = {
    IMAGE_KEY: tf.io.FixedLenFeature([NUM_PIXELS], tf.int64),
    LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
}

# Signatures of the exported SavedModel.
# serving_default: serialized tf.Example strings [N] -> {"probabilities": float32 [N, 10]}.
SERVING_SIGNATURE = "serving_default"
# predict_images: float32 images [N, 28, 28, 1] scaled to [0, 1] -> {"probabilities": [N, 10]}.
PREDICT_IMAGES_SIGNATURE = "predict_images"
# predict_single_image: the same with a static batch of 1; the Edge TPU rejects a dynamic batch,
# so this is the signature converted to the int8 TFLite model that ships.
SINGLE_IMAGE_SIGNATURE = "predict_single_image"
EXAMPLES_INPUT = "examples"
IMAGES_INPUT = "images"
PROBABILITIES_OUTPUT = "probabilities"


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
  """Maps int pixels 0-255 to float32 [0, 1], the range the model's input quantizer expects.

  With the input fake-quantized over [0, 1] the int8 input scale is exactly 1/255 and the zero
  point -128, so a device feeds `pixel - 128` with no rounding.
  """
  return tf.cast(pixels, tf.float32) / float(MAX_PIXEL_VALUE)


def to_images(pixels: tf.Tensor) -> tf.Tensor:
  """Reshapes flat [N, 784] pixels to scaled [N, 28, 28, 1] images."""
  return tf.reshape(scale_pixels(pixels), [-1, IMAGE_HEIGHT, IMAGE_WIDTH, 1])


def to_tf_example(image: np.ndarray, label: int) -> tf.train.Example:
  """Builds one tf.Example from a 28x28 uint8 image and its label."""
  # A Python list fills the repeated field about twice as fast as a numpy array.
  pixels = np.asarray(image, np.int64).reshape(-1).tolist()
  return tf.train.Example(features=tf.train.Features(feature={
      IMAGE_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=pixels)),
      LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
  }))
