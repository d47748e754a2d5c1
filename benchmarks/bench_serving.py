"""Serving benchmark: :predict over loopback with wrk, against the interpreter called in a loop.

Starts `python -m serving serve` on a pushed version and loads it with wrk (Debian's `wrk`, HTTP
keep-alive, one thread) on the SAME machine: client and server share its cores, as stated in the
output. Measures single-image :predict throughput and p50/p99 latency at a few concurrency levels,
batched :predict (images/s), then the ceiling: Int8Classifier.predict_pixels in a Python loop
(batch 1 and batched, one thread) and the JSON handling alone. Prints a Markdown section for
BENCHMARKS.md.

  .venv/bin/python benchmarks/bench_serving.py [--push-destination output/pushed_models]
      [--seconds 10] [--concurrency 1 4 16 64]
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np
import orjson

from components.mnist_example_gen import idx
from core import int8_runtime
from core import machine as machine_lib
from core import push_manifest
from serving import app as app_lib
from serving import model_store

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_IMAGES = os.path.join(REPO_ROOT, "data", "mnist", "t10k-images-idx3-ubyte.gz")
BATCH_SIZES = (32, 256)

def _uvicorn_stack() -> str:
  """The event loop and HTTP parser uvicorn's "auto" settings pick: the C ones when installed."""
  loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
  http = "httptools" if importlib.util.find_spec("httptools") else "h11"
  return f"{loop} + {http}"


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""


def machine() -> str:
  """The project's machine description (core/machine.py), as every benchmark states it."""
  return machine_lib.describe().line()


def loadavg() -> str:
  return " ".join(f"{value:.2f}" for value in machine_lib.load_average() or ())


def free_port() -> int:
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start_server(destination: str, port: int, log_path: str) -> subprocess.Popen:
  process = subprocess.Popen(
      [sys.executable, "-m", "serving", "serve", "--push-destination", destination,
       "--port", str(port)], cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=REPO_ROOT),
      stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
  deadline = time.monotonic() + 60
  while time.monotonic() < deadline:
    try:
      if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
        return process
    except httpx.TransportError:
      time.sleep(0.2)
  process.kill()
  raise RuntimeError(f"server not ready; see {log_path}")


def run_wrk(url: str, body_path: str, work_dir: str, connections: int, seconds: int):
  script = os.path.join(work_dir, "post.lua")
  with open(script, "w") as f:
    f.write(WRK_SCRIPT.format(body=body_path))
  out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                        "-s", script, url], capture_output=True, text=True, check=True).stdout
  rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
  percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
  non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
  errors = re.search(r"Socket errors:.*", out)
  return {"rps": rps, "p50_ms": percentiles["50"], "p99_ms": percentiles["99"],
          "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
          "socket_errors": errors.group(0) if errors else "", "raw": out}


def _ms(value: str) -> float:
  number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
  return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def time_loop(fn, seconds: float = 3.0) -> float:
  """Calls per second of fn() over about `seconds`."""
  fn()
  count, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    fn()
    count += 1
  return count / (time.perf_counter() - start)


def asgi_requests_per_second(store: model_store.ModelStore, body: bytes,
                             seconds: float = 3.0) -> float:
  """:predict calls per second on the ASGI app itself: FastAPI and our handler, no HTTP server."""
  import asyncio
  app = app_lib.create_app(store)
  scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
           "scheme": "http", "path": app_lib.PREDICT_PATH, "raw_path": app_lib.PREDICT_PATH.encode(),
           "query_string": b"", "root_path": "", "server": ("127.0.0.1", 80),
           "client": ("127.0.0.1", 1), "headers": [(b"content-type", b"application/json"),
                                                  (b"content-length", str(len(body)).encode())]}

  async def call() -> None:
    statuses = []

    async def receive():
      return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
      if message["type"] == "http.response.start":
        statuses.append(message["status"])
    await app(dict(scope), receive, send)
    assert statuses == [200], statuses

  async def loop() -> float:
    await call()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
      await call()
      count += 1
    return count / (time.perf_counter() - start)
  return asyncio.run(loop())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--push-destination", default=os.path.join("output", "pushed_models"))
  parser.add_argument("--seconds", type=int, default=10)
  parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
  args = parser.parse_args()
  if not shutil.which("wrk"):
    sys.exit("wrk is not installed (apt-get install wrk)")
  store = model_store.ModelStore(args.push_destination)
  loaded = store.refresh()
  if loaded is None:
    sys.exit(f"no pushed version under {args.push_destination}: run `make run` first")
  images = idx.read_images(EVAL_IMAGES)
  work_dir = tempfile.mkdtemp(prefix="bench_serving_")
  bodies = {1: orjson.dumps({"instances": images[:1].tolist()})}
  for batch in BATCH_SIZES:
    bodies[batch] = orjson.dumps({"instances": images[:batch].tolist()})
  body_paths = {}
  for batch, body in bodies.items():
    body_paths[batch] = os.path.join(work_dir, f"body_{batch}.json")
    with open(body_paths[batch], "wb") as f:
      f.write(body)

  load_before = loadavg()
  port = free_port()
  server = start_server(args.push_destination, port, os.path.join(work_dir, "server.log"))
  url = f"http://127.0.0.1:{port}{app_lib.PREDICT_PATH}"
  try:
    single = {c: run_wrk(url, body_paths[1], work_dir, c, args.seconds)
              for c in args.concurrency}
    batched = {b: run_wrk(url, body_paths[b], work_dir, 4, args.seconds) for b in BATCH_SIZES}
  finally:
    server.terminate()
    server.wait()
  load_after = loadavg()

  with open(os.path.join(loaded.path, push_manifest.MODEL_FILE), "rb") as f:
    classifier = int8_runtime.Int8Classifier(f.read(), num_threads=1)
  one = images[:1]
  direct_single = time_loop(lambda: classifier.predict_pixels(one))
  direct_batched = {b: b * time_loop(lambda b=b: classifier.predict_pixels(images[:b]))
                    for b in BATCH_SIZES}
  classifier.predict_pixels(one)  # Back to batch 1.
  asgi_single = asgi_requests_per_second(store, bodies[1])
  json_only = time_loop(lambda: orjson.dumps({"predictions": np.asarray(
      orjson.loads(bodies[1])["instances"], np.float64).reshape(1, 28, 28).sum(axis=(1, 2))
      .tolist()}))

  print(f"## Serving\n\n{datetime.date.today()}, `.venv/bin/python benchmarks/bench_serving.py "
        f"--push-destination {args.push_destination} --seconds {args.seconds}`: `python -m serving serve` (one uvicorn process, {_uvicorn_stack()}, "
        f"access log off) on version {loaded.version} ({loaded.device}, "
        f"`{push_manifest.MODEL_FILE}` {os.path.getsize(os.path.join(loaded.path, push_manifest.MODEL_FILE)):,} "
        f"bytes), loaded by `wrk -t1 --latency` (keep-alive, {args.seconds} s per row) on the same "
        f"machine: **client and server share its {os.cpu_count()} cores**. Machine: "
        f"{machine()}, {platform.python_implementation()} {platform.python_version()}; load "
        f"average {load_before} before, {load_after} after (shared with other jobs).\n")
  print("Single-image `:predict` (`{\"instances\": [28x28 pixels]}`, 4.9 kB body):\n")
  print("| connections | requests/s | p50 ms | p99 ms | non-2xx |\n| --- | --- | --- | --- | --- |")
  for c, r in single.items():
    print(f"| {c} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non_2xx']} |")
  print("\nBatched `:predict`, 4 connections:\n")
  print("| images per request | requests/s | images/s | p50 ms | p99 ms | non-2xx |\n"
        "| --- | --- | --- | --- | --- | --- |")
  for b, r in batched.items():
    print(f"| {b} | {r['rps']:,.0f} | {r['rps'] * b:,.0f} | {r['p50_ms']:.2f} | "
          f"{r['p99_ms']:.2f} | {r['non_2xx']} |")
  print("\nThe ceiling, in one Python thread without HTTP (`Int8Classifier.predict_pixels` in a "
        "loop, 1 interpreter thread):\n")
  print("| measure | per second |\n| --- | --- |")
  print(f"| interpreter, batch 1 (quantize + invoke + dequantize) | {direct_single:,.0f} images |")
  for b, v in direct_batched.items():
    print(f"| interpreter, batch {b} | {v:,.0f} images |")
  print(f"| JSON only: parse one instance, to numpy, encode a reply (orjson) | {json_only:,.0f} |")
  print(f"| the ASGI app in process (FastAPI, middleware, metrics, JSON, interpreter; no HTTP "
        f"server, no socket) | {asgi_single:,.0f} requests |")
  print(json.dumps({"socket_errors": {c: r["socket_errors"] for c, r in single.items()}}),
        file=sys.stderr)


if __name__ == "__main__":
  main()
