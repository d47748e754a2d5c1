"""What every route shares: the model store, the metrics, where work runs, the served version
for a request and the one prediction step both APIs call.

Where work runs (a finding of issue 17; `serving/app.py` lists each route):
  * On the event loop: every request whose body is at most INLINE_BODY_BYTES (a single image is
    1.8 kB as TF Serving JSON, 0.8 kB as OIP binary). Parsing and predicting one image takes about
    0.1-0.2 ms; handing it to a thread would add a thread switch and a GIL hand-over (about as much
    again) and let nothing else run sooner, since that work holds the GIL.
  * In the batch process (serving/batch_process.py): bigger bodies of a CPU version, whose
    parsing, pixel checks and interpreter run take milliseconds (a 256-image JSON batch about
    30 ms), mostly holding the GIL: in a thread of this process they stalled the event loop and
    every health check and single image behind it. One process per worker: a second would only
    compete with the event loop for the second core.
  * On the batch thread (BATCH_THREADS): image uploads (Pillow decoding and resampling, which
    releases the GIL), and batches of an Edge TPU version (the device serves one process).
"""

import asyncio
import concurrent.futures
import dataclasses
import functools
import multiprocessing
import os
from typing import Callable, Optional, TypeVar

import numpy as np
import prometheus_client
from prometheus_client import core as prometheus_core
from prometheus_client import multiprocess as prometheus_multiprocess

from serving import asgi
from serving import batch_process
from serving import model_store

INLINE_BODY_BYTES = 16 * 1024
BATCH_THREADS = 1
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's variable.
LATENCY_BUCKETS = (.0005, .001, .002, .004, .006, .008, .01, .015, .025, .05, .1, .25, .5, 1, 2.5)
T = TypeVar("T")


class _StoreCollector:
  """Metrics read from the store at scrape time: the served version, the device, skipped versions
  with their reasons, and whether the push destination is there."""

  def __init__(self, store: model_store.ModelStore):
    self._store = store

  def collect(self):
    store = self._store
    loaded = store.current
    yield prometheus_core.GaugeMetricFamily(
        "mnist_serving_model_version", "The version being served (0: none yet).",
        value=loaded.version if loaded else 0)
    yield prometheus_core.GaugeMetricFamily(
        "mnist_serving_model_on_edgetpu", "1 when the served version runs on the Edge TPU.",
        value=int(bool(loaded) and loaded.device == model_store.EDGETPU))
    failures = dict(store.failures)
    yield prometheus_core.GaugeMetricFamily(
        "mnist_serving_failed_versions", "Pushed versions skipped because they failed "
        "verification or loading.", value=len(failures))
    skipped = prometheus_core.GaugeMetricFamily(
        "mnist_serving_version_skipped", "1 for each skipped version, with the reason.",
        labels=["version", "reason"])
    for version, reason in sorted(failures.items()):
      skipped.add_metric([str(version), reason], 1)
    yield skipped
    problem = store.destination_problem
    destination = prometheus_core.GaugeMetricFamily(
        "mnist_serving_destination_problem", "1 while the push destination is missing, empty or "
        "no longer holds the served version, with what is wrong.", labels=["problem"])
    if problem:
      destination.add_metric([problem], 1)
    yield destination


class Metrics:
  """Prometheus metrics in a registry of this app's own (several apps may share a process).

  With several worker processes (serving/server.py sets PROMETHEUS_MULTIPROC_DIR for them), each
  writes its counters to files there and /metrics sums every worker's (prometheus_client's
  multiprocess mode); the store's gauges are the answering worker's.
  """

  def __init__(self, store: model_store.ModelStore):
    self.registry = prometheus_client.CollectorRegistry()  # What /metrics shows.
    counters = self.registry
    if os.environ.get(MULTIPROCESS_DIR):
      counters = prometheus_client.CollectorRegistry()  # Written to files, read by the collector.
      prometheus_multiprocess.MultiProcessCollector(self.registry)
    self.requests = prometheus_client.Counter(
        "mnist_serving_requests", "HTTP requests by endpoint and status code.",
        ["endpoint", "code"], registry=counters)
    self.errors = prometheus_client.Counter(
        "mnist_serving_errors", "HTTP requests answered with an error (4xx/5xx).",
        ["endpoint", "code"], registry=counters)
    self.latency = prometheus_client.Histogram(
        "mnist_serving_request_seconds", "Time from request to response, by endpoint.",
        ["endpoint"], buckets=LATENCY_BUCKETS, registry=counters)
    self.predictions = prometheus_client.Counter(
        "mnist_serving_predictions", "Images classified.", registry=counters)
    self.registry.register(_StoreCollector(store))
    self._children = {}

  def observe(self, endpoint: str, status: int, seconds: float) -> None:
    """Counts one request (label children cached: `labels()` costs microseconds per call)."""
    key = (endpoint, status)
    children = self._children.get(key)
    if children is None:
      code = str(status)
      children = (self.requests.labels(endpoint, code),
                  self.errors.labels(endpoint, code) if status >= 400 else None,
                  self.latency.labels(endpoint))
      self._children[key] = children
    requests, errors, latency = children
    requests.inc()
    if errors is not None:
      errors.inc()
    latency.observe(seconds)


Job = Callable[[Callable[[np.ndarray], model_store.Prediction]], asgi.Response]


@dataclasses.dataclass
class Context:
  store: model_store.ModelStore
  metrics: Metrics
  # Both started on first use, and again after close() (an app may see several lifespans).
  threads: Optional[concurrent.futures.ThreadPoolExecutor] = None
  batches: Optional[concurrent.futures.ProcessPoolExecutor] = None

  async def run(self, body_size: int, version: Optional[str], job: Job) -> asgi.Response:
    """job(predict) on the served version (or `version`): inline for a small body, else in the
    batch process (a CPU version) or on the batch thread (Edge TPU); see the module doc.

    `job` must pickle (a module-level function, or a functools.partial of one): the batch
    process runs it."""
    loaded = self.served(version)
    if body_size <= INLINE_BODY_BYTES:
      return job(functools.partial(self.predict, loaded))
    if loaded.device == model_store.EDGETPU:
      return await self.in_thread(lambda: job(functools.partial(self.predict, loaded)))
    ref = batch_process.ModelRef.of(self.store.destination, loaded)
    response, images = await asyncio.get_running_loop().run_in_executor(
        self._batch_process(), batch_process.run, ref, job)
    self.metrics.predictions.inc(images)
    return response

  def _batch_process(self) -> concurrent.futures.ProcessPoolExecutor:
    if self.batches is None:
      self.batches = concurrent.futures.ProcessPoolExecutor(
          1, mp_context=multiprocessing.get_context("spawn"), initializer=batch_process.start)
    return self.batches

  def close(self) -> None:
    """Stops the batch process and thread. Needed in a worker process: its exit joins child
    processes before any atexit hook could shut the pool down, so an open pool hangs the exit."""
    if self.batches is not None:
      self.batches.shutdown(wait=True, cancel_futures=True)
      self.batches = None
    if self.threads is not None:
      self.threads.shutdown(wait=False)
      self.threads = None

  async def in_thread(self, work: Callable[[], T]) -> T:
    """work() on the batch thread (image decoding, Edge TPU batches)."""
    if self.threads is None:
      self.threads = concurrent.futures.ThreadPoolExecutor(BATCH_THREADS,
                                                           thread_name_prefix="batch")
    return await asyncio.get_running_loop().run_in_executor(self.threads, work)

  def served(self, version: Optional[str] = None) -> model_store.LoadedModel:
    """The served version; raises ApiError 503 when none is loaded, 404 when `version` (from a
    versioned path) is not the served one (TF Serving's default policy serves the latest only)."""
    loaded = self.store.current
    if loaded is None:
      raise asgi.ApiError(503, f"no model version loaded yet from {self.store.destination}" +
                          (f"; skipped: {self.store.failures}" if self.store.failures else ""))
    if version is not None and version != str(loaded.version):
      raise asgi.ApiError(404, f"version {version!r} of model 'mnist' is not served: this server "
                          f"serves version {loaded.version}, the newest that verified and loaded")
    return loaded

  def predict(self, loaded: model_store.LoadedModel,
              pixels: np.ndarray) -> model_store.Prediction:
    """Runs checked pixels [N, 28, 28] (0-255) on `loaded` and counts the images."""
    prediction = loaded.classify(pixels)
    self.metrics.predictions.inc(len(prediction.classes))
    return prediction


def create(store: model_store.ModelStore) -> Context:
  return Context(store, Metrics(store))
