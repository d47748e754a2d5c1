"""Batch-1 int8 latency: the one measurement and the one quantile definition of the project.

metrics.json (the evaluator), comparison.md (`mnist-tfx compare`) and BENCHMARKS.md
(benchmarks/bench_evaluator.py) all mean the same by "p50/p99 latency": the wall time
(`time.perf_counter`) of one `invoke` of a single image on one interpreter thread, input already
quantized, output left quantized, over every image given once after one untimed warm-up run; the
quantiles are exact, numpy's default "linear" method (type 7 of Hyndman and Fan, 1996), in
milliseconds. No TensorFlow import.
"""

import time
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

QUANTILES = {"p50": 50.0, "p99": 99.0}  # Percent.
QUANTILE_METHOD = "linear"


def time_single_images(invoke: Callable[[np.ndarray], np.ndarray],
                       images: np.ndarray) -> Tuple[np.ndarray, List[float]]:
  """Runs `invoke` on each image [1, ...] of `images` [N, ...] in turn, timing each call.

  Returns:
    (the outputs stacked [N, ...], the seconds of each call). The first image is also run once,
    untimed, beforehand: an interpreter's first invoke prepares its kernels.
  """
  invoke(images[:1])
  outputs, seconds = [], []
  for i in range(len(images)):
    start = time.perf_counter()
    outputs.append(invoke(images[i:i + 1])[0])
    seconds.append(time.perf_counter() - start)
  return np.stack(outputs), seconds


def quantiles_ms(seconds: Sequence[float]) -> Dict[str, float]:
  """{"p50": ms, "p99": ms} of per-call times in seconds (at least one).

  Raises:
    ValueError: no times.
  """
  if not len(seconds):
    raise ValueError("no latencies to summarise")
  values = np.percentile(np.asarray(seconds, np.float64), list(QUANTILES.values()),
                         method=QUANTILE_METHOD)
  return {name: 1000.0 * float(value) for name, value in zip(QUANTILES, values, strict=True)}
