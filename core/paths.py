"""Where things go unless the user says otherwise, for the command line, the runners and serving.

`mnist-tfx run` keeps everything under DEFAULT_PIPELINE_ROOT; the pusher publishes under
PIPELINE_ROOT/PUSHED_MODELS_DIR; `mnist-tfx serve` reads that same place by default.
"""

import os
from typing import Optional

DEFAULT_PIPELINE_ROOT = "output"
# Under the pipeline root: the pusher's versions, the hand-built trainer's resumable checkpoints.
PUSHED_MODELS_DIR = "pushed_models"
TRAINER_CHECKPOINTS_DIR = "trainer_checkpoints"


def default_push_destination(pipeline_root: str = DEFAULT_PIPELINE_ROOT) -> str:
  """PIPELINE_ROOT/pushed_models (a URI such as gs://bucket/root joins the same way)."""
  return os.path.join(pipeline_root, PUSHED_MODELS_DIR)


def trainer_checkpoints_dir(pipeline_root: str) -> str:
  """PIPELINE_ROOT/trainer_checkpoints."""
  return os.path.join(pipeline_root, TRAINER_CHECKPOINTS_DIR)

# `mnist-tfx run --download` keeps the fetched files here.
DEFAULT_DOWNLOAD_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mnist-edgetpu-tfx")


def bundled_data_dir() -> Optional[str]:
  """The full MNIST bundled with the repository (data/mnist/), when running from a checkout.

  None for an installation from a wheel, which carries no data: pass --data-dir or --download.
  """
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                      "mnist")
  return path if os.path.isdir(path) else None
