"""The base of every error the user can fix (bad data, bad settings, a model that cannot ship).

No TensorFlow or TFX import. `mnist-tfx` ends a run that failed with one of these with a one-line
message and exit code 2; any other exception is an internal failure (exit code 1).
"""


class PipelineInputError(ValueError):
  """Bad input in the user's terms: the message names the file, setting or model and the problem."""
