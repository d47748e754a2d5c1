"""Six routes from MNIST to a full-int8 model, trained and judged side by side (`compare`).

The question the project answers: why build the network and its quantization-aware training by hand
instead of taking the Keras example and quantizing it? Each route is trained on the same Examples
(written once by MnistExampleGen's executor) with the project's own trainers, converted with the
one int8 conversion (`core/int8_tflite.py`: quantization-aware, or post-training full-integer
with a representative dataset from the training split) and measured with the one int8 runtime
(`core/int8_runtime.py`) and the evaluator's metric code, on the same test images:

1. the seed's Keras MLP (Dense 128, dropout 0.2, Adam, 5 epochs) trained in float, then
   post-training quantization (PTQ);
2. the same Keras MLP through tfmot's `quantize_model` (quantization-aware training, QAT);
3. the seed's hand-written 784-512-10 network, built by hand with this project's quantizers;
4. this project's default hand-built QAT CNN (`trainer_module.hparams.HParams()`);
5. the same CNN in Keras with tfmot QAT;
6. the same CNN trained in float in Keras, then PTQ.

Timings are wall-clock on the machine that runs the comparison; `machine_info()` records it.
"""

import dataclasses
import datetime
import io
import json
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import logging
from matplotlib import figure as figure_lib
from matplotlib import ticker
import numpy as np
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf
import tflite
from tfx.types import standard_artifacts

from components.evaluator import metrics as metrics_lib
from components.mnist_example_gen import constants as example_gen_constants
from components.mnist_example_gen import executor as example_gen_executor
from components.mnist_example_gen import idx
from components.pusher import edgetpu_compatibility
from core import contract
from core import features
from core import hashing
from core import int8_runtime
from core import int8_tflite
from trainer_module import data
from trainer_module import hparams as hparams_lib
from trainer_module import keras_baseline
from trainer_module import train

# Output files under --output.
MARKDOWN_FILE = "comparison.md"
JSON_FILE = "comparison.json"
ACCURACY_SIZE_PLOT = "int8_accuracy_vs_size.png"
CURVES_PLOT = "eval_accuracy_per_epoch.png"
EXAMPLES_DIR = "examples"
ROUTES_DIR = "routes"
TFLITE_FILE = "model_int8.tflite"

HAND_BUILT = "hand-built"
KERAS = "keras"
QAT = "QAT"
PTQ = "PTQ"

# Post-training quantization calibrates on this many training images (TensorFlow suggests a few
# hundred; more changes the ranges little for MNIST).
CALIBRATION_EXAMPLES = 500
# --quick: train on the first QUICK_TRAIN training images and test on the first QUICK_EVAL test
# images (at most), 1 epoch unless --epochs says otherwise.
QUICK_TRAIN = 6000
QUICK_EVAL = 1000
QUICK_EPOCHS = 1
# Batched int8 throughput: the evaluator's batch size, every core, passes over the test images
# repeated for at least this long and this many times (a pass over 1,000 images of a small MLP takes
# under a millisecond, too short to time alone).
THROUGHPUT_BATCH = 256
THROUGHPUT_MIN_SECONDS = 1.0
THROUGHPUT_MIN_PASSES = 3
_FLOAT_EVAL_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class Route:
  """One way from MNIST to a full-int8 TFLite model."""
  key: str  # Directory and JSON name.
  label: str  # For the table and plots.
  trainer: str  # HAND_BUILT (trainer_module.train) or KERAS (trainer_module.keras_baseline).
  quantization: str  # QAT (fake quant while training) or PTQ (float training, calibrated after).
  config: Dict[str, Any]  # The trainer's custom_config.


def routes(epochs: Optional[int] = None) -> List[Route]:
  """The six routes; `epochs` overrides every route's own number of epochs.

  The CNN routes take the hand-built trainer's current defaults (`HParams()`), so all three train
  the same architecture (conv_filters, kernel size, dense units, dropout) with the same batch size,
  learning rate and epochs; the Keras ones use a constant learning rate and no random shifts (the
  Keras baseline has neither a schedule nor augmentation).
  """
  defaults = hparams_lib.HParams()
  keras_cnn = {key: getattr(defaults, key) for key in sorted(keras_baseline.KERAS_KEYS)}
  keras_cnn["model"] = "cnn"
  hand_mlp = hparams_lib.HParams(model="mlp")
  cnn_name = (f"CNN {'-'.join(f'conv{f}' for f in defaults.conv_filters)}-"
              f"dense{defaults.dense_units}")
  all_routes = [
      Route("keras_mlp_ptq", "1 seed Keras MLP-128, float + PTQ", KERAS, PTQ, {}),
      Route("keras_mlp_tfmot_qat", "2 seed Keras MLP-128, tfmot QAT", KERAS, QAT,
            {keras_baseline.QUANTIZE_KEY: True}),
      Route("hand_mlp_qat", f"3 hand-built MLP 784-{hand_mlp.mlp_units}-10, QAT", HAND_BUILT, QAT,
            {"model": "mlp"}),
      Route("hand_cnn_qat", f"4 hand-built {cnn_name}, QAT (default)", HAND_BUILT, QAT, {}),
      Route("keras_cnn_tfmot_qat", f"5 Keras {cnn_name}, tfmot QAT", KERAS, QAT,
            {**keras_cnn, keras_baseline.QUANTIZE_KEY: True}),
      Route("keras_cnn_ptq", f"6 Keras {cnn_name}, float + PTQ", KERAS, PTQ, keras_cnn),
  ]
  if epochs is not None:
    all_routes = [dataclasses.replace(r, config={**r.config, "epochs": epochs})
                  for r in all_routes]
  return all_routes


def model_cost(model_content: bytes) -> Tuple[int, int]:
  """(parameters, multiply-accumulates per image) of a batch-1 TFLite model, from its flatbuffer.

  Counts the operators that hold weights, where all of a classifier's multiplies are (pooling,
  ReLU, reshapes, softmax and (de)quantization add no multiply-accumulates worth counting):
    CONV_2D: weights [out_channels, kh, kw, in_channels]; MACs = output elements * kh * kw *
      in_channels;
    DEPTHWISE_CONV_2D: weights [1, kh, kw, channels]; MACs = output elements * kh * kw;
    FULLY_CONNECTED: weights [units, inputs]; MACs = output elements * inputs.
  Parameters are the elements of those operators' constant weight and bias tensors (the trained
  parameters; the quantization scales are not counted). Counting the converted model rather than
  the architecture gives every route, whatever trained it, the same rule. The model must have batch
  1 (what `convert_to_int8_tflite` produces), so the counts are per image.

  Raises:
    ValueError: the bytes are not a TFLite flatbuffer.
  """
  if len(model_content) < 8 or model_content[4:8] != b"TFL3":
    raise ValueError("not a TFLite flatbuffer (missing the 'TFL3' file identifier)")
  model = tflite.Model.GetRootAs(model_content, 0)
  subgraph = model.Subgraphs(0)

  def shape(index: int) -> List[int]:
    tensor = subgraph.Tensors(index)
    return [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []

  def is_constant(index: int) -> bool:
    return model.Buffers(subgraph.Tensors(index).Buffer()).DataLength() > 0

  parameters = macs = 0
  for i in range(subgraph.OperatorsLength()):
    op = subgraph.Operators(i)
    code = model.OperatorCodes(op.OpcodeIndex())
    name = tflite.opcode2name(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
      continue
    inputs = [int(t) for t in op.InputsAsNumpy() if t >= 0]
    weights = shape(inputs[1])
    outputs = math.prod(shape(int(op.OutputsAsNumpy()[0])))
    parameters += sum(math.prod(shape(t)) for t in inputs[1:] if is_constant(t))
    if name == "CONV_2D":
      macs += outputs * math.prod(weights[1:])
    elif name == "DEPTHWISE_CONV_2D":
      macs += outputs * weights[1] * weights[2]
    else:
      macs += outputs * weights[-1]
  return parameters, macs


def machine_info() -> Dict[str, Any]:
  """The machine a comparison ran on: CPU model, ISA flags, cores, load, software versions."""
  cpu_model, flags = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          cpu_model = value.strip()
        elif key.strip() == "flags":
          flags = set(value.split())
  except OSError:
    pass
  return {
      "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
      "cpu_model": cpu_model,
      "isa_flags": sorted(flags & {"avx2", "avx512f"}),
      "cores": os.cpu_count(),
      "load_average": _load_average(),
      "platform": platform.platform(),
      "python": platform.python_version(),
      "tensorflow": tf.__version__,
  }


def _load_average() -> Optional[List[float]]:
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return None


def write_examples(data_dir: str, examples_uri: str, quick: bool) -> Tuple[List[str], List[str]]:
  """Validates the IDX files, writes them as Examples with MnistExampleGen's executor.

  Returns the (train, eval) file patterns the routes read: every shard, or for `quick` the first
  shard of each split, cut so that it holds the first QUICK_TRAIN / QUICK_EVAL images at most (the
  executor's shard i holds examples [i*n/k, (i+1)*n/k) in file order).

  Raises:
    idx.IdxFormatError: a file is missing or invalid (before anything is written).
  """
  sources = idx.validate_input_dir(data_dir)
  limits = {contract.TRAIN_SPLIT: QUICK_TRAIN, contract.EVAL_SPLIT: QUICK_EVAL}
  shards = {split: (math.ceil(sources[split].num_examples / limits[split]) if quick else
                    example_gen_constants.DEFAULT_NUM_SHARDS[split]) for split in sources}
  examples = standard_artifacts.Examples()
  examples.uri = examples_uri
  example_gen_executor.Executor().Do({}, {example_gen_constants.EXAMPLES_KEY: [examples]}, {
      example_gen_constants.INPUT_DIR_KEY: data_dir,
      **{example_gen_constants.NUM_SHARDS_KEYS[split]: count for split, count in shards.items()}})

  def pattern(split: str) -> List[str]:
    name = (example_gen_executor.SHARD_NAME_TEMPLATE.format(index=0, count=shards[split])
            if quick else "*")
    return [os.path.join(examples_uri, f"Split-{split}", name)]

  return pattern(contract.TRAIN_SPLIT), pattern(contract.EVAL_SPLIT)


@dataclasses.dataclass(frozen=True)
class _Training:
  seconds: float  # Wall time of the trainer's train_and_export call.
  epochs: int
  curve: List[float]  # Evaluation accuracy after each epoch.
  epoch_seconds: List[float]  # Time between consecutive epochs' evaluations (from the 2nd epoch).


def _train(route: Route, train_files: Sequence[str], eval_files: Sequence[str],
           serving_model_dir: str, model_run_dir: str) -> _Training:
  """Trains and exports one route; per-epoch accuracy and times come from its TensorBoard logs."""
  start = time.perf_counter()
  if route.trainer == HAND_BUILT:
    result = train.train_and_export(train_files, eval_files, serving_model_dir, model_run_dir,
                                    hparams=route.config)
    epochs, tag = result.epochs, "accuracy"
    log_dir = os.path.join(model_run_dir, contract.MODEL_RUN_EVAL_DIR)
  else:
    keras_baseline.train_and_export(train_files, eval_files, serving_model_dir, model_run_dir,
                                    route.config)
    epochs = keras_baseline.parse_config(route.config)[0].epochs
    # tf_keras' TensorBoard callback: <log_dir>/validation, scalar epoch_accuracy per epoch.
    log_dir, tag = os.path.join(model_run_dir, "validation"), "epoch_accuracy"
  seconds = time.perf_counter() - start
  accumulator = event_accumulator.EventAccumulator(
      log_dir, size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  events = []
  if tag in accumulator.Tags()[event_accumulator.TENSORS]:
    events = accumulator.Tensors(tag)
  else:
    logging.warning("No per-epoch %r scalars under %s; the curve of %s is left out.", tag,
                    log_dir, route.key)
  return _Training(seconds, epochs,
                   curve=[float(tf.make_ndarray(event.tensor_proto)) for event in events],
                   epoch_seconds=np.diff([event.wall_time for event in events]).tolist())


def _warm_up_keras(eval_files: Sequence[str], scratch_dir: str) -> None:
  """One throw-away Keras epoch (the seed's MLP on the test split), so that no route's time
  includes Keras' process start-up.

  The first Keras training in a process pays one-time costs (tens of seconds on 2 cores) that a
  second, identical one does not; the hand-built routes run after it and need no warm-up.
  """
  keras_baseline.train_and_export(eval_files, eval_files, os.path.join(scratch_dir, "model"),
                                  os.path.join(scratch_dir, "logs"), {"epochs": 1})
  shutil.rmtree(scratch_dir)


def training_throughput(training: _Training, num_train: int) -> float:
  """Training examples/s: steady state when there are 2+ epochs, else over the whole call.

  Steady state is the training images divided by the median time between consecutive epochs'
  evaluations (an epoch's training plus its evaluation), which leaves out the first epoch's
  tracing and the data loading and export around the loop.
  """
  if training.epoch_seconds:
    return num_train / statistics.median(training.epoch_seconds)
  return training.epochs * num_train / training.seconds if training.seconds else 0.0


def _float_accuracy(serving_model_dir: str, pixels: np.ndarray, labels: np.ndarray) -> float:
  """Accuracy of the exported SavedModel's predict_images signature (fake quant for QAT models)."""
  predict = tf.saved_model.load(serving_model_dir).signatures[contract.PREDICT_IMAGES_SIGNATURE]
  stats = metrics_lib.sum_stats(
      metrics_lib.batch_stats(labels[i:i + _FLOAT_EVAL_BATCH], predict(**{
          contract.IMAGES_INPUT: features.to_images(pixels[i:i + _FLOAT_EVAL_BATCH])})[
              contract.PROBABILITIES_OUTPUT].numpy())
      for i in range(0, len(labels), _FLOAT_EVAL_BATCH))
  return metrics_lib.classification_metrics(**stats)["accuracy"]


def measure_int8(model_content: bytes, pixels: np.ndarray, labels: np.ndarray) -> Dict[str, Any]:
  """Int8 accuracy, batch-1 latency and batched throughput of TFLite bytes on this CPU.

  Accuracy comes from batch-1 runs on one thread (what the device computes, as in the evaluator),
  each image timed: p50/p99 latency in ms. Throughput: batches of THROUGHPUT_BATCH (or all the
  images when fewer) on every core, passes over the whole batches repeated for at least
  THROUGHPUT_MIN_SECONDS, in images/s over all of them.

  Raises:
    int8_runtime.Int8ModelError: the model's input or output is not int8.
  """
  single = int8_runtime.Int8Classifier(model_content, num_threads=1)
  quantized = single.quantize_pixels(pixels)
  single.invoke_quantized(quantized[:1])  # Warm-up: the first invoke prepares the kernels.
  outputs, latencies = [], []
  for i in range(len(quantized)):
    start = time.perf_counter()
    outputs.append(single.invoke_quantized(quantized[i:i + 1])[0])
    latencies.append(time.perf_counter() - start)
  probabilities = single.dequantize(np.stack(outputs))
  accuracy = metrics_lib.classification_metrics(
      **metrics_lib.batch_stats(labels, probabilities))["accuracy"]
  # Whole batches only: a smaller last batch would re-allocate the interpreter's tensors twice.
  batch = min(THROUGHPUT_BATCH, len(quantized))
  timed = quantized[:len(quantized) // batch * batch]
  batched = int8_runtime.Int8Classifier(model_content, num_threads=os.cpu_count())
  batched.invoke_quantized(timed[:batch])
  passes, start = 0, time.perf_counter()
  while passes < THROUGHPUT_MIN_PASSES or time.perf_counter() - start < THROUGHPUT_MIN_SECONDS:
    for i in range(0, len(timed), batch):
      batched.invoke_quantized(timed[i:i + batch])
    passes += 1
  seconds = time.perf_counter() - start
  quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
  return {"int8_accuracy": accuracy,
          "int8_latency_ms": {"p50": 1000 * quantiles[49], "p99": 1000 * quantiles[98]},
          "int8_images_per_second": passes * len(timed) / seconds,
          "int8_threads": os.cpu_count(), "int8_batch": batch}


def evaluate_route(route: Route, route_dir: str, train_files: Sequence[str],
                   eval_files: Sequence[str], calibration_images: np.ndarray,
                   eval_pixels: np.ndarray, eval_labels: np.ndarray,
                   num_train: int) -> Dict[str, Any]:
  """Trains, converts and measures one route in `route_dir` (emptied first); returns its row."""
  if os.path.exists(route_dir):  # The hand-built trainer would resume from old checkpoints.
    shutil.rmtree(route_dir)
  serving_model_dir = os.path.join(route_dir, "serving_model")
  training = _train(route, train_files, eval_files, serving_model_dir,
                    os.path.join(route_dir, "model_run"))
  float_accuracy = _float_accuracy(serving_model_dir, eval_pixels, eval_labels)
  # int8 I/O for every route, as measured in BENCHMARKS.md (the layers are the same for uint8 I/O).
  model_content = int8_tflite.convert_to_int8_tflite(
      serving_model_dir, representative_images=calibration_images if route.quantization == PTQ
      else None, io_dtype=contract.INT8_IO)
  tflite_path = os.path.join(route_dir, TFLITE_FILE)
  with open(tflite_path, "wb") as f:
    f.write(model_content)
  int8 = measure_int8(model_content, eval_pixels, eval_labels)
  parameters, macs = model_cost(model_content)
  edgetpu = edgetpu_compatibility.check_edgetpu_compatibility(model_content)
  io = edgetpu_compatibility.describe_io(model_content)
  io_types = [t["dtype"] for t in io["inputs"] + io["outputs"]]
  row = {
      "key": route.key, "label": route.label, "trainer": route.trainer,
      "quantization": route.quantization, "config": route.config, "epochs": training.epochs,
      "float_accuracy": float_accuracy, **int8,
      "quantization_drop_pp": 100 * (float_accuracy - int8["int8_accuracy"]),
      "int8_size_bytes": len(model_content), "parameters": parameters, "macs_per_image": macs,
      "train_seconds": training.seconds,
      "train_examples_per_second": training_throughput(training, num_train),
      "epoch_seconds": training.epoch_seconds,
      "edgetpu_operations_mapped": edgetpu.operations_on_edgetpu,
      "edgetpu_operations_total": edgetpu.operations_total,
      "edgetpu_fully_mapped": edgetpu.fully_mapped,
      "edgetpu_summary": edgetpu.summary(),
      "int8_io": all(t == "int8" for t in io_types), "io_dtypes": io_types,
      "eval_accuracy_per_epoch": training.curve,
      "tflite_file": os.path.relpath(tflite_path, os.path.dirname(os.path.dirname(route_dir))),
      "tflite_sha256": hashing.sha256_bytes(model_content),
  }
  logging.info("%s: float %.4f, int8 %.4f, %d bytes, %.0f s training.", route.label,
               float_accuracy, int8["int8_accuracy"], len(model_content), training.seconds)
  return row


def run_comparison(data_dir: str, output_dir: str, epochs: Optional[int] = None,
                   quick: bool = False) -> Dict[str, Any]:
  """Runs every route and writes comparison.md, comparison.json and the plots to `output_dir`.

  The data is validated before anything is written; the results are written only when every
  route has finished (a failed route leaves an earlier comparison in `output_dir` as it was).

  Raises:
    idx.IdxFormatError: the IDX files are missing or invalid.
    int8_tflite.Int8ConversionError: a route's model does not convert to full int8.
  """
  idx.validate_input_dir(data_dir)  # Fail before touching the output directory.
  if quick and epochs is None:
    epochs = QUICK_EPOCHS
  os.makedirs(output_dir, exist_ok=True)
  load_before = _load_average()
  examples_uri = os.path.join(output_dir, EXAMPLES_DIR)
  if os.path.exists(examples_uri):
    shutil.rmtree(examples_uri)
  train_files, eval_files = write_examples(data_dir, examples_uri, quick)
  train_pixels, _ = data.load_split(train_files)
  eval_pixels, eval_labels = data.load_split(eval_files)
  calibration_images = (train_pixels[:CALIBRATION_EXAMPLES].astype(np.float32) /
                        contract.MAX_PIXEL_VALUE).reshape(
                            -1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1)
  _warm_up_keras(eval_files, os.path.join(output_dir, "warm_up"))
  rows = [evaluate_route(route, os.path.join(output_dir, ROUTES_DIR, route.key), train_files,
                         eval_files, calibration_images, eval_pixels, eval_labels,
                         len(train_pixels))
          for route in routes(epochs)]
  comparison = {
      "machine": {**machine_info(), "load_average_before": load_before},
      "data": {"data_dir": data_dir, "train_examples": len(train_pixels),
               "eval_examples": len(eval_labels), "quick": quick,
               "calibration_examples": len(calibration_images)},
      "routes": rows,
  }
  _write_results(comparison, output_dir)
  return comparison


def _write_results(comparison: Dict[str, Any], output_dir: str) -> None:
  """Writes the JSON, the Markdown and the plots; each file appears whole (rename into place)."""
  contents = {JSON_FILE: json.dumps(comparison, indent=2).encode(),
              MARKDOWN_FILE: render_markdown(comparison).encode(),
              ACCURACY_SIZE_PLOT: _plot_accuracy_vs_size(comparison["routes"]),
              CURVES_PLOT: _plot_curves(comparison["routes"])}
  for name, content in contents.items():
    descriptor, temporary = tempfile.mkstemp(dir=output_dir, prefix=f".{name}.")
    with os.fdopen(descriptor, "wb") as f:
      f.write(content)
    os.replace(temporary, os.path.join(output_dir, name))


# The table: (heading, function of a row giving the cell).
COLUMNS = (
    ("route", lambda r: r["label"]),
    ("float acc %", lambda r: f"{100 * r['float_accuracy']:.2f}"),
    ("int8 acc %", lambda r: f"{100 * r['int8_accuracy']:.2f}"),
    ("drop pp", lambda r: f"{r['quantization_drop_pp']:+.2f}"),
    ("int8 size KB", lambda r: f"{r['int8_size_bytes'] / 1000:.1f}"),
    ("params", lambda r: f"{r['parameters']:,}"),
    ("MACs/image", lambda r: f"{r['macs_per_image']:,}"),
    ("epochs", lambda r: str(r["epochs"])),
    ("train s", lambda r: f"{r['train_seconds']:.0f}"),
    ("train ex/s", lambda r: f"{r['train_examples_per_second']:,.0f}"),
    ("int8 p50 ms", lambda r: f"{r['int8_latency_ms']['p50']:.3f}"),
    ("int8 img/s", lambda r: f"{r['int8_images_per_second']:,.0f}"),
    ("Edge TPU ops", lambda r: f"{r['edgetpu_operations_mapped']}/{r['edgetpu_operations_total']}"),
    ("int8 I/O", lambda r: "yes" if r["int8_io"] else "no (" + "/".join(r["io_dtypes"]) + ")"),
)


def render_markdown(comparison: Dict[str, Any]) -> str:
  """comparison.md: how it was measured, the table, and what each column means."""
  machine, data_info, rows = comparison["machine"], comparison["data"], comparison["routes"]
  lines = [
      "# Hand-built QAT vs Keras, tfmot and post-training quantization",
      "",
      f"{machine['date_utc']} UTC, {machine['cpu_model']}, {machine['cores']} cores, ISA "
      f"{', '.join(machine['isa_flags']) or 'no avx2/avx512f'}, load average "
      f"{machine['load_average_before']} before and {machine['load_average']} after, Python "
      f"{machine['python']}, TensorFlow {machine['tensorflow']}.",
      f"Data: {data_info['train_examples']:,} training and {data_info['eval_examples']:,} test "
      f"images from {data_info['data_dir']}{' (--quick)' if data_info['quick'] else ''}; PTQ "
      f"calibrates on {data_info['calibration_examples']} training images.",
      "",
      "| " + " | ".join(heading for heading, _ in COLUMNS) + " |",
      "|" + "---|" * len(COLUMNS),
  ]
  lines += ["| " + " | ".join(cell(row) for _, cell in COLUMNS) + " |" for row in rows]
  lines += [
      "",
      "- float acc: the exported SavedModel (fake-quant for QAT routes) on the test images; int8 "
      "acc: the int8 TFLite model at batch 1 through `core/int8_runtime.py`; drop = float - "
      "int8.",
      "- params, MACs/image: weights and biases, and multiply-accumulates, of the int8 model's "
      "conv and fully-connected operators (`model_cost`).",
      "- train s: wall time of the trainer's `train_and_export` (reading the data, every epoch "
      "with its evaluation, export; a throw-away Keras epoch beforehand takes Keras' one-time "
      "start-up out of route 1). train ex/s: training images / median time between consecutive "
      "epochs' evaluations (steady state; with one epoch: epochs x images / train s).",
      "- The hand-built routes use the trainer's defaults (cosine learning-rate decay, random "
      "shifts of the training images); the Keras routes a constant learning rate and no "
      "augmentation (the Keras baseline has neither).",
      "- int8 p50 ms: one image, one thread; int8 img/s: batches of "
      f"{THROUGHPUT_BATCH} on every core, passes over the test images repeated for at least "
      f"{THROUGHPUT_MIN_SECONDS:g} s.",
      "- Edge TPU ops: operators the Edge TPU compiler would map, predicted from the flatbuffer "
      "(`components/pusher/edgetpu_compatibility.py`; no compiler runs here).",
      "",
  ]
  hand_cnn = next((r for r in rows if r["key"] == "hand_cnn_qat"), None)
  for row in rows:
    if hand_cnn and "cnn" in row["key"] and row["parameters"] != hand_cnn["parameters"]:
      lines.append(f"Note: {row['label']} has {row['parameters']:,} parameters, the hand-built "
                   f"CNN {hand_cnn['parameters']:,}: the Keras baseline does not build the same "
                   "architecture.")
  return "\n".join(lines).rstrip() + "\n"


def _figure_bytes(figure: figure_lib.Figure) -> bytes:
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
  return buffer.getvalue()


def _plot_accuracy_vs_size(rows: Sequence[Dict[str, Any]]) -> bytes:
  figure = figure_lib.Figure(figsize=(7, 4.5))
  axes = figure.subplots()
  for row in rows:
    marker = "o" if row["quantization"] == QAT else "s"
    axes.scatter(row["int8_size_bytes"] / 1000, 100 * row["int8_accuracy"], marker=marker, s=50,
                 label=row["label"])
  axes.set_xlim(left=0)
  axes.set_xlabel("int8 TFLite model size (KB)")
  axes.set_ylabel("int8 test accuracy (%)")
  axes.set_title("int8 accuracy against model size (circles: QAT, squares: PTQ)")
  axes.grid(True, alpha=0.3)
  axes.legend(fontsize=7, loc="best")
  return _figure_bytes(figure)


def _plot_curves(rows: Sequence[Dict[str, Any]]) -> bytes:
  figure = figure_lib.Figure(figsize=(7, 4.5))
  axes = figure.subplots()
  for row in rows:
    curve = row["eval_accuracy_per_epoch"]
    if curve:
      axes.plot(range(1, len(curve) + 1), [100 * a for a in curve], marker="o", label=row["label"])
  axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  axes.set_xlabel("epoch")
  axes.set_ylabel("test accuracy after the epoch (%)")
  axes.set_title("Per-epoch evaluation while training (fake-quant for QAT routes)")
  axes.grid(True, alpha=0.3)
  axes.legend(fontsize=7, loc="best")
  return _figure_bytes(figure)
