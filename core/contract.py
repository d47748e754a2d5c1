"""The data and model contract every component, the trainer and serving share (no TensorFlow).

MnistExampleGen writes these features, the curated schema describes them, the trainer parses them,
the evaluator and pusher call the exported signatures named here, and serving reads the pushed
model's labels. `core/features.py` adds the TensorFlow side (the feature spec and the pixel
scaling); modules that must not import TensorFlow (the IDX reader, the metrics, the int8 runtime,
serving) import this one.
"""

from typing import Tuple

IMAGE_KEY = "image"
LABEL_KEY = "label"

# Images are uint8 28x28, row-major; pixels 0 (background) to 255 (ink), as in the IDX files.
IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH
MAX_PIXEL_VALUE = 255
NUM_CLASSES = 10
# The class names, index = the model's output position.
LABELS: Tuple[str, ...] = tuple(str(digit) for digit in range(NUM_CLASSES))

# The int8 TFLite model's input and output tensor type (`--io-dtype`); the layers inside are int8
# either way. uint8: input scale 1/255, zero point 0 (a raw pixel byte is the quantized value, as
# in Coral's own models and what pycoral's `common.set_input` copies) and uint8 output; int8: input
# scale 1/255, zero point -128 (pixel - 128) and int8 output.
UINT8_IO = "uint8"
INT8_IO = "int8"
IO_DTYPES: Tuple[str, ...] = (UINT8_IO, INT8_IO)
DEFAULT_IO_DTYPE = UINT8_IO


def check_io_dtype(io_dtype: str) -> str:
  """Returns `io_dtype` if it is one of IO_DTYPES.

  Raises:
    ValueError: naming the value and the choices.
  """
  if io_dtype not in IO_DTYPES:
    raise ValueError(f"io_dtype must be one of {list(IO_DTYPES)}, got {io_dtype!r}")
  return io_dtype


TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"

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

# The Trainer's ModelRun artifact: TensorBoard event files per step (train/) and per epoch on the
# eval split (eval/); the run summary, the report, `mnist-tfx tensorboard` and `compare` read them.
MODEL_RUN_TRAIN_DIR = "train"
MODEL_RUN_EVAL_DIR = "eval"
