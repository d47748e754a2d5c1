"""Strict parsing of settings that arrive as text (CLI KEY=VALUE, Kubeflow's JSON parameters).

No TensorFlow or TFX import: the command line, the components and the trainers share it.
"""

from typing import Any

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def parse_bool(name: str, value: Any) -> bool:
  """Reads a boolean given as bool, 0/1 or text (true/false, 1/0, yes/no, on/off; any case).

  Raises:
    ValueError: naming `name`, for anything else ("False" is False here, never a truthy string).
  """
  if isinstance(value, bool):
    return value
  if isinstance(value, int) and value in (0, 1):
    return bool(value)
  if isinstance(value, str):
    text = value.strip().lower()
    if text in _TRUE:
      return True
    if text in _FALSE:
      return False
  raise ValueError(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")
