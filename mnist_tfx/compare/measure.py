"""Measuring one trained route: float and int8 accuracy, int8 speed, size, cost, Edge TPU mapping.

Everything is measured through the owners' code: the int8 model comes from the one conversion
(`core.int8_tflite`), runs on the one int8 runtime (`core.int8_runtime`), is timed by the one
batch-1 latency measurement (`core.latency`), scored by the evaluator's metric code, read through
the one flatbuffer reader (`core.tflite_graph`) and checked by the pusher's Edge TPU rules.
"""

import math
import os
import time
from typing import Any, Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tflite

from components.evaluator import metrics as metrics_lib
from components.pusher import edgetpu_compatibility
from core import contract
from core import features
from core import hashing
from core import int8_runtime
from core import int8_tflite
from core import latency
from core import tflite_graph
from mnist_tfx.compare import routes as routes_lib

# Batched int8 throughput: the evaluator's batch size, every core, passes over the test images
# repeated for at least this long and this many times (a pass over 1,000 images of a small MLP takes
# under a millisecond, too short to time alone).
THROUGHPUT_BATCH = 256
THROUGHPUT_MIN_SECONDS = 1.0
THROUGHPUT_MIN_PASSES = 3
_FLOAT_EVAL_BATCH = 1000
# Operators that hold weights, where all of a classifier's multiplies are.
_WEIGHTED_OPERATORS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_INT8_MIN = -128


def float_accuracy(serving_model_dir: str, pixels: np.ndarray, labels: np.ndarray) -> float:
  """Accuracy of the exported SavedModel's predict_images signature (fake quant for QAT models)
  on uint8 pixels [N, 784] with int labels [N]."""
  predict = tf.saved_model.load(serving_model_dir).signatures[contract.PREDICT_IMAGES_SIGNATURE]
  stats = metrics_lib.sum_stats(
      metrics_lib.batch_stats(labels[i:i + _FLOAT_EVAL_BATCH], predict(**{
          contract.IMAGES_INPUT: features.to_images(pixels[i:i + _FLOAT_EVAL_BATCH])})[
              contract.PROBABILITIES_OUTPUT].numpy())
      for i in range(0, len(labels), _FLOAT_EVAL_BATCH))
  return metrics_lib.classification_metrics(**stats)["accuracy"]


def _batched_images_per_second(model_content: bytes, quantized: np.ndarray) -> Tuple[float, int]:
  """(images/s, batch size): batches of THROUGHPUT_BATCH (or all the images when fewer) on every
  core, passes over the whole batches repeated for at least THROUGHPUT_MIN_SECONDS."""
  batch = min(THROUGHPUT_BATCH, len(quantized))
  # Whole batches only: a smaller last batch would re-allocate the interpreter's tensors twice.
  timed = quantized[:len(quantized) // batch * batch]
  batched = int8_runtime.Int8Classifier(model_content, num_threads=os.cpu_count())
  batched.invoke_quantized(timed[:batch])
  passes, start = 0, time.perf_counter()
  while passes < THROUGHPUT_MIN_PASSES or time.perf_counter() - start < THROUGHPUT_MIN_SECONDS:
    for i in range(0, len(timed), batch):
      batched.invoke_quantized(timed[i:i + batch])
    passes += 1
  return passes * len(timed) / (time.perf_counter() - start), batch


def measure_int8(model_content: bytes, pixels: np.ndarray, labels: np.ndarray) -> Dict[str, Any]:
  """Int8 accuracy, batch-1 latency and batched throughput of TFLite bytes on this CPU.

  Accuracy comes from batch-1 runs on one thread (what the device computes, as in the evaluator),
  each image timed by `core.latency` (p50/p99 in ms, the evaluator's definition). Throughput:
  `_batched_images_per_second`, in images/s.

  Raises:
    int8_runtime.Int8ModelError: the model's input or output is not int8.
  """
  single = int8_runtime.Int8Classifier(model_content, num_threads=1)
  outputs, seconds = latency.time_single_images(single.invoke_quantized,
                                                single.quantize_pixels(pixels))
  accuracy = metrics_lib.classification_metrics(
      **metrics_lib.batch_stats(labels, single.dequantize(outputs)))["accuracy"]
  images_per_second, batch = _batched_images_per_second(model_content,
                                                        single.quantize_pixels(pixels))
  return {"int8_accuracy": accuracy, "int8_latency_ms": latency.quantiles_ms(seconds),
          "int8_images_per_second": images_per_second, "int8_threads": os.cpu_count(),
          "int8_batch": batch}


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
  graph = tflite_graph.TfliteGraph(model_content)
  parameters = macs = 0
  for op in graph.operators():
    name = graph.operator_name(op)
    if name not in _WEIGHTED_OPERATORS:
      continue
    inputs = [int(t) for t in op.InputsAsNumpy() if t >= 0]
    weights = graph.shape(inputs[1])
    outputs = math.prod(graph.shape(int(op.OutputsAsNumpy()[0])))
    parameters += sum(math.prod(graph.shape(t)) for t in inputs[1:]
                      if graph.constant_bytes(t) is not None)
    if name == "CONV_2D":
      macs += outputs * math.prod(weights[1:])
    elif name == "DEPTHWISE_CONV_2D":
      macs += outputs * weights[1] * weights[2]
    else:
      macs += outputs * weights[-1]
  return parameters, macs


def relu_codes_below_zero(model_content: bytes) -> List[int]:
  """Per weighted operator with a fused ReLU, in execution order: how many of its output's 256
  int8 codes stand for values below 0 (zero point + 128), which a ReLU output never takes.

  0 means the learned range starts at 0 and every code is spent on the output's values; a
  range still reaching below 0 (e.g. an activation range that has not forgotten its initial
  [-6, 6]) spends codes on nothing.
  """
  graph = tflite_graph.TfliteGraph(model_content)
  codes = []
  for op in graph.operators():
    name = graph.operator_name(op)
    options = {"CONV_2D": tflite.Conv2DOptions, "FULLY_CONNECTED": tflite.FullyConnectedOptions,
               "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions}.get(name)
    if options is None or tflite_graph.builtin_options(
        op, options).FusedActivationFunction() != tflite.ActivationFunctionType.RELU:
      continue
    quantization = graph.quantization(int(op.OutputsAsNumpy()[0])) or {"zero_point": _INT8_MIN}
    codes.append(int(quantization["zero_point"]) - _INT8_MIN)
  return codes


def describe_int8_model(model_content: bytes) -> Dict[str, Any]:
  """Size, cost, Edge TPU mapping and I/O types of TFLite bytes (no running)."""
  parameters, macs = model_cost(model_content)
  edgetpu = edgetpu_compatibility.check_edgetpu_compatibility(model_content)
  io = edgetpu_compatibility.describe_io(model_content)
  io_types = [t["dtype"] for t in io["inputs"] + io["outputs"]]
  return {
      "int8_size_bytes": len(model_content), "parameters": parameters, "macs_per_image": macs,
      "edgetpu_operations_mapped": edgetpu.operations_on_edgetpu,
      "edgetpu_operations_total": edgetpu.operations_total,
      "edgetpu_fully_mapped": edgetpu.fully_mapped, "edgetpu_summary": edgetpu.summary(),
      "int8_io": all(t == "int8" for t in io_types), "io_dtypes": io_types,
      "relu_codes_below_zero": relu_codes_below_zero(model_content),
      "tflite_sha256": hashing.sha256_bytes(model_content),
  }


def convert(serving_model_dir: str, quantization: str,
            calibration_images: np.ndarray) -> bytes:
  """The one int8 conversion: from the FakeQuant ranges ("QAT"), or calibrated on
  `calibration_images` (float32 [N, 28, 28, 1] in [0, 1]) for post-training quantization.

  With int8 input and output: the comparison is about the layers, and the pipeline's uint8 I/O
  only adds two exact QUANTIZE operators at the edges (the same accuracy, README "Edge TPU").
  """
  return int8_tflite.convert_to_int8_tflite(
      serving_model_dir,
      representative_images=calibration_images if quantization == routes_lib.PTQ else None,
      io_dtype=contract.INT8_IO)
