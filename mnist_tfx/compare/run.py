"""`mnist-tfx compare`'s run: every route, every seed, then comparison.json, .md and the plots.

Runs go seed by seed, each seed through every route in turn, so that a change of the machine's
load during the hours a full comparison takes spreads over the routes instead of landing on one.
Each finished run writes its own run.json beside its model; `resume` reuses those of an earlier
invocation that trained the same route configuration on the same data.
"""

import dataclasses
import datetime
import json
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence

from absl import logging
import numpy as np

from components.mnist_example_gen import idx
from core import contract
from core import machine
from mnist_tfx.compare import aggregate
from mnist_tfx.compare import measure
from mnist_tfx.compare import qat_graphs
from mnist_tfx.compare import render
from mnist_tfx.compare import routes as routes_lib
from mnist_tfx.compare import training
from trainer_module import data

# Output files under --output.
MARKDOWN_FILE = "comparison.md"
JSON_FILE = "comparison.json"
ACCURACY_SIZE_PLOT = "int8_accuracy_vs_size.png"
CURVES_PLOT = "eval_accuracy_per_epoch.png"
EXAMPLES_DIR = "examples"
ROUTES_DIR = "routes"
WARM_UP_DIR = "warm_up"
RUN_FILE = "run.json"
TFLITE_FILE = "model_int8.tflite"
# --quick: 1 epoch unless --epochs says otherwise.
QUICK_EPOCHS = 1
# Post-training quantization calibrates on this many training images (TensorFlow suggests a few
# hundred; more changes the ranges little for MNIST).
CALIBRATION_EXAMPLES = 500
# The same network trained by both QATs: its two training graphs are described side by side.
QAT_PAIR = ("hand_cnn", "keras_cnn_tfmot")
_TFLOP_PER_MAC = 6 / 1e12  # Forward, backward to inputs and to weights; 2 FLOP per MAC.


def _utc_now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _write_atomically(path: str, content: bytes) -> None:
  """Writes the file whole or not at all (a temporary file renamed into place)."""
  descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path),
                                           prefix=f".{os.path.basename(path)}.")
  with os.fdopen(descriptor, "wb") as f:
    f.write(content)
  os.replace(temporary, path)


def _as_json(value: Any) -> Any:
  """`value` as it reads back from JSON (tuples become lists), for comparing with a stored run."""
  return json.loads(json.dumps(value))


class _Inputs:
  """What every run reads: the Examples' file patterns, the test split, calibration images."""

  def __init__(self, data_dir: str, output_dir: str, quick: bool):
    examples_uri = os.path.join(output_dir, EXAMPLES_DIR)
    if os.path.exists(examples_uri):
      shutil.rmtree(examples_uri)
    self.train_files, self.eval_files = training.write_examples(data_dir, examples_uri, quick)
    train_pixels, _ = data.load_split(self.train_files)
    self.eval_pixels, self.eval_labels = data.load_split(self.eval_files)
    self.calibration_images = (train_pixels[:CALIBRATION_EXAMPLES].astype(np.float32) /
                               contract.MAX_PIXEL_VALUE).reshape(
                                   -1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1)
    self.description = {"data_dir": data_dir, "train_examples": len(train_pixels),
                        "eval_examples": len(self.eval_labels), "quick": quick,
                        "calibration_examples": len(self.calibration_images)}


def _stored_run(run_dir: str, config: Dict[str, Any],
                data_description: Dict[str, Any]) -> Optional[Dict[str, Any]]:
  """The run.json of an earlier run of the same configuration on the same data, if any."""
  try:
    with open(os.path.join(run_dir, RUN_FILE)) as f:
      stored = json.load(f)
  except (OSError, ValueError):
    return None
  same = stored.get("config") == config and stored.get("data") == data_description
  return stored if same else None


def run_once(route: routes_lib.Route, seed: int, epochs: Optional[int], inputs: _Inputs,
             output_dir: str, resume: bool) -> Dict[str, Any]:
  """Trains, converts and measures one seed of one route; returns its row (also its run.json).

  With `resume`, returns the run.json an earlier run of the same configuration on the same data
  left in the run's directory instead, with "reused": true.
  """
  run_dir = os.path.join(output_dir, ROUTES_DIR, route.key, f"seed-{seed}")
  config = _as_json(routes_lib.run_config(route, seed, epochs))
  stored = _stored_run(run_dir, config, inputs.description) if resume else None
  if stored:
    return {**stored, "reused": True}
  started, load_before = _utc_now(), machine.load_average()
  trained = training.train_route(route, config, inputs.train_files, inputs.eval_files, run_dir)
  model_content = measure.convert(trained.serving_model_dir, route.quantization,
                                  inputs.calibration_images)
  tflite_path = os.path.join(run_dir, TFLITE_FILE)
  _write_atomically(tflite_path, model_content)
  int8 = measure.measure_int8(model_content, inputs.eval_pixels, inputs.eval_labels)
  model = measure.describe_int8_model(model_content)
  float_accuracy = measure.float_accuracy(trained.serving_model_dir, inputs.eval_pixels,
                                          inputs.eval_labels)
  result = trained.result
  row = {
      "key": route.key, "seed": seed, "config": config, "data": inputs.description,
      "epochs": result.epochs, "float_accuracy": float_accuracy, **int8, **model,
      "quantization_drop_pp": 100 * (float_accuracy - int8["int8_accuracy"]),
      "train_seconds": result.train_seconds, "wall_seconds": trained.wall_seconds,
      "training_tflop": _TFLOP_PER_MAC * model["macs_per_image"] *
                        inputs.description["train_examples"] * result.epochs,
      "eval_history": [list(point) for point in result.eval_history],
      "tflite_file": os.path.relpath(tflite_path, output_dir),
      "started_utc": started, "load_average_before": load_before,
      "load_average_after": machine.load_average(),
  }
  _write_atomically(os.path.join(run_dir, RUN_FILE), json.dumps(row, indent=2).encode())
  return row


def _qat_methods(route_list: Sequence[routes_lib.Route]) -> Optional[Dict[str, Any]]:
  """The QAT_PAIR's FakeQuant ops by role, from the training graphs their trainers build."""
  by_key = {route.key: route for route in route_list}
  if not all(key in by_key for key in QAT_PAIR):
    return None
  hand, tfmot = (by_key[key] for key in QAT_PAIR)
  return {"network": hand.network, "route_keys": list(QAT_PAIR),
          "hand_built": qat_graphs.by_role(qat_graphs.hand_built_fake_quants(hand.config)),
          "tfmot": qat_graphs.by_role(qat_graphs.tfmot_fake_quants(tfmot.config))}


def _progress_line(route: routes_lib.Route, row: Dict[str, Any], done: int, total: int) -> str:
  return (f"[{done}/{total}] {route.label} ({route.recipe} recipe), seed {row['seed']}: int8 "
          f"{row['int8_accuracy']:.2%}, float {row['float_accuracy']:.2%}, "
          f"{row['train_seconds']:.0f} s training" + (" (reused)" if row.get("reused") else ""))


def run_comparison(data_dir: str, output_dir: str, seeds: Sequence[int],
                   epochs: Optional[int] = None, quick: bool = False, resume: bool = False,
                   route_list: Optional[List[routes_lib.Route]] = None,
                   progress: Callable[[str], None] = logging.info) -> Dict[str, Any]:
  """Runs every route (default: routes.routes()) for every seed, writes comparison.md,
  comparison.json and the plots; `progress` gets a line after each run.

  The data is validated before anything is written; the results are written only when every
  run has finished (a failed run leaves an earlier comparison in `output_dir` as it was).

  Raises:
    idx.IdxFormatError: the IDX files are missing or invalid.
    int8_tflite.Int8ConversionError: a route's model does not convert to full int8.
  """
  idx.validate_input_dir(data_dir)  # Fail before touching the output directory.
  if quick and epochs is None:
    epochs = QUICK_EPOCHS
  route_list = route_list if route_list is not None else routes_lib.routes()
  os.makedirs(output_dir, exist_ok=True)
  machine_before, started = machine.describe(), _utc_now()
  inputs = _Inputs(data_dir, output_dir, quick)
  if any(route.trainer == routes_lib.KERAS for route in route_list):
    training.warm_up_keras(inputs.eval_files, os.path.join(output_dir, WARM_UP_DIR))
  runs: Dict[str, List[Dict[str, Any]]] = {route.key: [] for route in route_list}
  for seed in seeds:
    for route in route_list:
      runs[route.key].append(run_once(route, seed, epochs, inputs, output_dir, resume))
      progress(_progress_line(route, runs[route.key][-1], sum(map(len, runs.values())),
                              len(seeds) * len(route_list)))
  comparison = {
      "started_utc": started, "finished_utc": _utc_now(),
      "machine_before": machine_before.to_dict(), "machine_after": machine.describe().to_dict(),
      "data": inputs.description, "seeds": list(seeds), "epochs_override": epochs,
      "recipes": {name: routes_lib.recipe_description(name)
                  for name in dict.fromkeys(route.recipe for route in route_list)},
      "qat_methods": _qat_methods(route_list),
      "routes": [{"route": {**dataclasses.asdict(route), "label": route.label},
                  "runs": runs[route.key], "summary": aggregate.summarize(runs[route.key])}
                 for route in route_list],
  }
  _write_results(comparison, output_dir)
  return comparison


def _write_results(comparison: Dict[str, Any], output_dir: str) -> None:
  """Writes the JSON, the Markdown and the plots, each whole (renamed into place)."""
  contents = {JSON_FILE: json.dumps(comparison, indent=2).encode(),
              MARKDOWN_FILE: render.render_markdown(comparison).encode(),
              ACCURACY_SIZE_PLOT: render.plot_accuracy_vs_size(comparison["routes"]),
              CURVES_PLOT: render.plot_curves(comparison["routes"])}
  for name, content in contents.items():
    _write_atomically(os.path.join(output_dir, name), content)
