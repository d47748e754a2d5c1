"""comparison.md and the two plots, rendered from the comparison's JSON (`run.py`).

Everything a reader sees is computed from that JSON: the recipes are described from the values
the trainers use, the QAT methods from the training graphs (`qat_graphs.py`).
"""

import io
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from matplotlib import figure as figure_lib
from matplotlib import ticker

from mnist_tfx.compare import aggregate
from mnist_tfx.compare import measure
from mnist_tfx.compare import qat_graphs
from mnist_tfx.compare import routes as routes_lib

Entry = Dict[str, Any]  # One route of comparison.json: {"route", "runs", "summary"}.


def _percent(value: Optional[Dict[str, float]]) -> str:
  """Mean (min-max) of a spread of fractions, in percent; the mean alone for one run."""
  if value is None:
    return "-"
  if value["n"] == 1:
    return f"{100 * value['mean']:.2f}"
  return f"{100 * value['mean']:.2f} ({100 * value['min']:.2f}-{100 * value['max']:.2f})"


def _signed(value: float) -> str:
  return f"{round(value, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00".


def _points(value: Optional[Dict[str, float]]) -> str:
  """Mean (min-max) of a spread of percentage points, signed."""
  if value is None:
    return "-"
  if value["n"] == 1:
    return _signed(value["mean"])
  return f"{_signed(value['mean'])} ({_signed(value['min'])} to {_signed(value['max'])})"


def _time_to(entry: Entry, threshold: float) -> str:
  reached = entry["summary"]["time_to_accuracy"][aggregate.threshold_key(threshold)]
  seconds = reached["seconds"]
  if seconds is None:
    return "not reached"
  text = (f"{seconds['mean']:.0f}" if seconds["n"] == 1 else
          f"{seconds['mean']:.0f} ({seconds['min']:.0f}-{seconds['max']:.0f})")
  return text if reached["reached"] == reached["runs"] else (
      f"{text}, {reached['reached']}/{reached['runs']} runs")


def _mean(entry: Entry, key: str, form: str) -> str:
  value = entry["summary"][key]
  return "-" if value is None else format(value["mean"], form)


def _first(entry: Entry) -> Dict[str, Any]:
  return entry["runs"][0]


def _load(entry: Entry) -> str:
  """The 1-minute load average around the route's runs (before and after each), lowest-highest."""
  loads = [run[key][0] for run in entry["runs"]
           for key in ("load_average_before", "load_average_after") if run.get(key)]
  return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "-"


Column = Tuple[str, Callable[[Entry], str]]
ACCURACY_COLUMNS: Tuple[Column, ...] = (
    ("route", lambda e: e["route"]["label"]),
    ("recipe", lambda e: e["route"]["recipe"]),
    ("seeds", lambda e: ",".join(str(s) for s in e["summary"]["seeds"])),
    ("int8 acc %", lambda e: _percent(e["summary"]["int8_accuracy"])),
    ("float acc %", lambda e: _percent(e["summary"]["float_accuracy"])),
    ("drop pp", lambda e: _points(e["summary"]["quantization_drop_pp"])),
    *((f"to {aggregate.threshold_key(t)} % s", lambda e, t=t: _time_to(e, t))
      for t in aggregate.THRESHOLDS),
)
COST_COLUMNS: Tuple[Column, ...] = (
    ("route", lambda e: e["route"]["label"]),
    ("recipe", lambda e: e["route"]["recipe"]),
    ("int8 KB", lambda e: f"{_first(e)['int8_size_bytes'] / 1000:.1f}"),
    ("params", lambda e: f"{_first(e)['parameters']:,}"),
    ("MACs/image", lambda e: f"{_first(e)['macs_per_image']:,}"),
    ("epochs", lambda e: str(_first(e)["epochs"])),
    ("train TFLOP", lambda e: _mean(e, "training_tflop", ".2f")),
    ("train s", lambda e: _mean(e, "train_seconds", ".0f")),
    ("wall s", lambda e: _mean(e, "wall_seconds", ".0f")),
    ("int8 p50 ms", lambda e: _mean(e, "int8_latency_p50_ms", ".3f")),
    ("int8 img/s", lambda e: _mean(e, "int8_images_per_second", ",.0f")),
    ("Edge TPU ops", lambda e: f"{_first(e)['edgetpu_operations_mapped']}/"
                               f"{_first(e)['edgetpu_operations_total']}"),
    ("int8 I/O", lambda e: "yes" if _first(e)["int8_io"] else
     "no (" + "/".join(_first(e)["io_dtypes"]) + ")"),
    ("load", _load),
)


def _row(cells: Sequence[str]) -> str:
  """A Markdown table row; a "|" inside a cell is escaped so it does not split the cell."""
  return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def table(columns: Sequence[Column], entries: Sequence[Entry]) -> List[str]:
  """A Markdown table, one row per route."""
  return ([_row([heading for heading, _ in columns]), "|" + "---|" * len(columns)] +
          [_row([cell(entry) for _, cell in columns]) for entry in entries])


def _header(comparison: Dict[str, Any]) -> List[str]:
  data, before, after = (comparison["data"], comparison["machine_before"],
                         comparison["machine_after"])
  runs = [run for entry in comparison["routes"] for run in entry["runs"]]
  loads = [run[key][0] for run in runs for key in ("load_average_before", "load_average_after")
           if run.get(key)]
  started = min([run["started_utc"] for run in runs] + [comparison["started_utc"]])
  return [
      "# Hand-built QAT against Keras, tfmot and post-training quantization",
      "",
      f"{started} to {comparison['finished_utc']} UTC. Machine: {before['line']} (at the start "
      f"of this invocation; 1-minute load average {min(loads, default=0):.1f} to "
      f"{max(loads, default=0):.1f} around the runs, "
      f"{' '.join(f'{v:.2f}' for v in after['load_average'] or [])} at the end: under load, "
      "times and throughputs are lower bounds).",
      f"Data: {data['train_examples']:,} training and {data['eval_examples']:,} test images from "
      f"{data['data_dir']}{' (--quick)' if data['quick'] else ''}; seeds "
      f"{', '.join(str(s) for s in comparison['seeds'])} for every route; PTQ calibrates on "
      f"{data['calibration_examples']} training images.",
      "",
      "Recipes (how a network is trained; every route of the same network shares one):",
      "",
      *(f"- **{name}**: {description}." for name, description in comparison["recipes"].items()),
      "",
  ]


def _qat_methods(comparison: Dict[str, Any]) -> List[str]:
  methods = comparison["qat_methods"]
  hand, tfmot = methods["hand_built"], methods["tfmot"]
  lines = [
      "## Where the two QATs differ, read from their training graphs",
      "",
      f"The FakeQuant ops of {methods['network']} as each trainer builds it for training "
      "(traced with training=True; `mnist_tfx/compare/qat_graphs.py`):",
      "",
      "| quantized tensor | hand-built QAT | tfmot `quantize_model` |",
      "|---|---|---|",
  ]
  roles = [r for r in qat_graphs.ROLES if r in hand or r in tfmot]
  roles += sorted((set(hand) | set(tfmot)) - set(roles))
  lines += [_row([role, hand.get(role, "none"), tfmot.get(role, "none")]) for role in roles]
  codes = [(e["route"]["label"], _first(e)["relu_codes_below_zero"])
           for e in comparison["routes"] if e["route"]["key"] in methods["route_keys"]]
  lines += ["", "What the ranges became, in the int8 models of seed "
            f"{comparison['seeds'][0]}: int8 codes of each ReLU output (conv, then dense) that "
            "stand for values below 0, which a ReLU output never takes (0 = every one of the "
            "256 codes spent on real values):", ""]
  lines += [f"- {label}: {', '.join(str(c) for c in counts) or 'none'}" for label, counts in codes]
  return lines + [""]


def render_markdown(comparison: Dict[str, Any]) -> str:
  """comparison.md: how it was measured, the two tables, the QAT methods, the columns' meaning."""
  entries = comparison["routes"]
  lines = _header(comparison)
  lines += ["## Accuracy over seeds", ""] + table(ACCURACY_COLUMNS, entries) + [""]
  lines += ["## Size, cost and speed", ""] + table(COST_COLUMNS, entries) + [""]
  if comparison.get("qat_methods"):
    lines += _qat_methods(comparison)
  lines += [
      "## How each column is measured",
      "",
      "- int8 acc: the int8 TFLite model at batch 1 through `core/int8_runtime.py` on the test "
      "images; float acc: the exported SavedModel (fake quant for QAT routes); drop = float - "
      "int8. Cells give the mean over seeds and, in brackets, the lowest and highest.",
      "- to 99.x % s: seconds of training (evaluation after each epoch included, data loading "
      "and export not) until the end of the first epoch whose test accuracy reached it: fake "
      "quant for QAT routes, float for PTQ routes; mean (range) over the seeds that reached it.",
      "- train s: the same clock over all the epochs; wall s: the trainer's whole "
      "`train_and_export` call (reading the data, building the model, the epochs, export); "
      "means over seeds. train TFLOP: 6 x MACs/image x training images x epochs (forward, and "
      "backward to inputs and to weights).",
      "- params, MACs/image: weights and biases, and multiply-accumulates, of the int8 model's "
      "conv and fully-connected operators (`measure.model_cost`).",
      "- int8 p50 ms: one image on one thread, `core/latency.py` (the evaluator's definition); "
      f"int8 img/s: batches of {measure.THROUGHPUT_BATCH} on every core, passes over the test "
      f"images repeated for at least {measure.THROUGHPUT_MIN_SECONDS:g} s.",
      "- load: the machine's 1-minute load average before and after each of the route's runs, "
      "lowest-highest (2 cores: above 2, other jobs shared them; seconds and images/s of routes "
      "run at different loads do not compare).",
      "- Edge TPU ops: operators the Edge TPU compiler would map, predicted from the flatbuffer "
      "(`components/pusher/edgetpu_compatibility.py`; no compiler runs here).",
      "- Same recipe: the Keras routes read the hand-built trainer's batches (same shuffle, same "
      "shifts from the same per-step seeds) and follow its learning-rate schedule with the same "
      "Adam (`trainer_module/keras_baseline.py`); Keras draws its own dropout masks.",
      "",
  ]
  return "\n".join(lines).rstrip() + "\n"


def _figure_bytes(figure: figure_lib.Figure, xlabel: str, ylabel: str, title: str) -> bytes:
  """Labels the figure's one axes, adds the grid and legend, and renders it as PNG bytes."""
  axes = figure.axes[0]
  axes.set_xlabel(xlabel)
  axes.set_ylabel(ylabel)
  axes.set_title(title)
  axes.grid(True, alpha=0.3)
  axes.legend(fontsize=6, loc="best")
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
  return buffer.getvalue()


def _label(entry: Entry) -> str:
  return f"{entry['route']['label']} ({entry['route']['recipe']})"


def plot_accuracy_vs_size(entries: Sequence[Entry]) -> bytes:
  """int8 accuracy (mean, bars from lowest to highest seed) against int8 model size."""
  figure = figure_lib.Figure(figsize=(8, 5))
  axes = figure.subplots()
  for entry in entries:
    accuracy = entry["summary"]["int8_accuracy"]
    mean = 100 * accuracy["mean"]
    axes.errorbar(_first(entry)["int8_size_bytes"] / 1000, mean,
                  yerr=[[mean - 100 * accuracy["min"]], [100 * accuracy["max"] - mean]],
                  fmt="o" if entry["route"]["quantization"] == routes_lib.QAT else "s",
                  capsize=3, label=_label(entry))
  axes.set_xlim(left=0)
  return _figure_bytes(figure, "int8 TFLite model size (KB)",
                       "int8 test accuracy (%), mean and range over seeds",
                       "int8 accuracy against model size (circles: QAT, squares: PTQ)")


def plot_curves(entries: Sequence[Entry]) -> bytes:
  """Mean per-epoch evaluation accuracy of every route."""
  figure = figure_lib.Figure(figsize=(8, 5))
  axes = figure.subplots()
  for entry in entries:
    curve = entry["summary"]["eval_accuracy_per_epoch"]
    if curve:
      axes.plot(range(1, len(curve) + 1), [100 * a for a in curve], marker="o",
                label=_label(entry))
  axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  return _figure_bytes(figure, "epoch", "test accuracy after the epoch (%), mean over seeds",
                       "Per-epoch evaluation while training (fake quant for QAT routes)")
