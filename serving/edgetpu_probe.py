"""Tries the Edge TPU delegate in a child process before the server loads it (no TensorFlow).

A `libedgetpu.so.1` that is not the plugin LiteRT expects fails in ways a process cannot always
survive: without the plugin's `tflite_plugin_create_delegate` symbol LiteRT's `Delegate` raises
AttributeError (google-coral/tflite#63, google-coral/edgetpu#812) and its `__del__` then prints
another; a runtime built for another device or driver can abort or segfault inside
`tflite_plugin_create_delegate` or the first `invoke`, killing the process and every version it
serves. So the model store asks this module, run as `python -m serving.edgetpu_probe MODEL`, to
load the delegate, build the interpreter on the compiled model and run one image; only when that
child exits cleanly with {"ok": true} does the server load the delegate itself.

  probe(path) -> None when the Edge TPU works, else the reason (one line) it does not.
"""

import json
import os
import signal
import subprocess
import sys
from typing import Optional

TIMEOUT_SECONDS = 60.0  # The first inference loads the model into the Edge TPU: seconds at most.


def probe(model_path: str, library: str, timeout: float = TIMEOUT_SECONDS) -> Optional[str]:
  """None when `library` loads as LiteRT's delegate and runs `model_path`, else why not."""
  source_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      p for p in (source_root, os.environ.get("PYTHONPATH")) if p))
  try:
    child = subprocess.run([sys.executable, "-m", "serving.edgetpu_probe", model_path, library],
                           capture_output=True, text=True, timeout=timeout, env=env, check=False)
  except subprocess.TimeoutExpired:
    return f"the Edge TPU delegate {library} did not run one image within {timeout:g} s"
  if child.returncode < 0:
    name = signal.Signals(-child.returncode).name
    return (f"loading the Edge TPU delegate {library} and running one image crashed the probe "
            f"process ({name}){_last_line(child.stderr)}")
  try:
    answer = json.loads(child.stdout.strip().splitlines()[-1])
  except (ValueError, IndexError):
    return (f"the Edge TPU probe of {library} exited with {child.returncode} without an answer"
            f"{_last_line(child.stderr)}")
  return None if answer.get("ok") else str(answer.get("error"))


def _last_line(stderr: str) -> str:
  lines = [line.strip() for line in stderr.splitlines() if line.strip()]
  return f": {lines[-1][:300]}" if lines else ""


def _main(model_path: str, library: str) -> dict:
  from ai_edge_litert import interpreter  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from core import int8_runtime  # pylint: disable=import-outside-toplevel
  try:
    delegate = interpreter.load_delegate(library)
  except (ValueError, OSError, AttributeError, RuntimeError) as e:
    detail = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, AttributeError):
      detail = (f"{library} is not the TFLite delegate plugin LiteRT expects (no "
                f"tflite_plugin_create_delegate: {detail})")
    return {"ok": False, "error": f"the Edge TPU delegate {library} did not load ({detail})"}
  with open(model_path, "rb") as f:
    content = f.read()
  try:
    classifier = int8_runtime.Int8Classifier(content, delegates=[delegate])
    classifier.predict_pixels(np.zeros((1,) + classifier.example_shape))
  except (ValueError, RuntimeError) as e:
    return {"ok": False, "error": f"{os.path.basename(model_path)} does not run on the Edge TPU "
            f"delegate {library}: {' '.join(str(e).split())}"}
  return {"ok": True}


if __name__ == "__main__":
  print(json.dumps(_main(sys.argv[1], sys.argv[2])), flush=True)
  # Skip interpreter teardown: a broken runtime may crash in its destructors after answering.
  os._exit(0)  # pylint: disable=protected-access
