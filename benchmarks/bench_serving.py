"""Serving benchmark: TF Serving's :predict and the Open Inference Protocol's infer over loopback
with wrk, against the interpreter called in a loop.

Starts `python -m serving serve` (uvicorn, one worker process unless --workers) on a pushed
version and loads it with wrk (Debian's `wrk`, HTTP keep-alive, one thread) on the SAME machine:
client and server share its cores, as the output says. Measures:
  * single-image :predict (JSON) at a few connection counts: requests/s, p50/p99;
  * single-image OIP infer with binary tensors (tritonclient's default encoding);
  * batches (JSON :predict and binary infer, 32 and 256 images per request): images/s;
  * GET /healthz at one connection while two connections send 256-image batches: its p99;
  * the ceiling, in this process: the interpreter in a loop and the ASGI app without HTTP.
Prints a Markdown section for BENCHMARKS.md.

  .venv/bin/python -m benchmarks.bench_serving [--push-destination output/pushed_models]
      [--seconds 10] [--concurrency 1 4 16 64] [--workers 1]
"""

import argparse
import asyncio
import dataclasses
import datetime
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import httpx
import numpy as np
import orjson

from components.mnist_example_gen import idx
from core import int8_runtime
from core import machine as machine_lib
from core import push_manifest
from serving import app as app_lib
from serving import model_store
from serving import open_inference

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_IMAGES = os.path.join(REPO_ROOT, "data", "mnist", "t10k-images-idx3-ubyte.gz")
BATCH_SIZES = (32, 256)
WRK_SCRIPT = """
wrk.method = "{method}"
{headers}
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""


@dataclasses.dataclass(frozen=True)
class Load:
  """One wrk load: a request (method, path, body file, headers) and how many images it holds."""
  name: str
  method: str
  path: str
  body_path: str
  headers: Dict[str, str]
  images: int


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


def start_server(destination: str, port: int, log_path: str, workers: int) -> subprocess.Popen:
  process = subprocess.Popen(
      [sys.executable, "-m", "serving", "serve", "--push-destination", destination,
       "--port", str(port), "--workers", str(workers)], cwd=REPO_ROOT,
      env=dict(os.environ, PYTHONPATH=REPO_ROOT), stdout=open(log_path, "w"),
      stderr=subprocess.STDOUT)
  deadline = time.monotonic() + 60
  while time.monotonic() < deadline:
    try:
      if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
        return process
    except httpx.TransportError:
      time.sleep(0.2)
  process.kill()
  raise RuntimeError(f"server not ready; see {log_path}")


def write_loads(images: np.ndarray, work_dir: str) -> Dict[str, Load]:
  """The request bodies, written to files for wrk: JSON :predict and binary infer, 1/32/256."""
  loads = {}
  for count in (1, *BATCH_SIZES):
    json_path = os.path.join(work_dir, f"predict_{count}.json")
    with open(json_path, "wb") as f:
      f.write(orjson.dumps({"instances": images[:count].tolist()}))
    loads[f"predict_{count}"] = Load(f"predict_{count}", "POST", app_lib.PREDICT_PATH, json_path,
                                     {"Content-Type": "application/json"}, count)
    header = orjson.dumps({"inputs": [{"name": "images", "shape": [count, 28, 28, 1],
                                       "datatype": "UINT8",
                                       "parameters": {"binary_data_size": count * 784}}],
                           "parameters": {"binary_data_output": True}})
    binary_path = os.path.join(work_dir, f"infer_{count}.bin")
    with open(binary_path, "wb") as f:
      f.write(header + images[:count].astype(np.uint8).tobytes())
    loads[f"infer_{count}"] = Load(f"infer_{count}", "POST", open_inference.INFER_PATH,
                                   binary_path,
                                   {"Inference-Header-Content-Length": str(len(header))}, count)
  empty = os.path.join(work_dir, "empty")
  open(empty, "wb").close()
  loads["healthz"] = Load("healthz", "GET", "/healthz", empty, {}, 0)
  return loads


def cpu_seconds(pid: int) -> float:
  """User + system CPU seconds of process `pid` and all its descendants (workers, batch process)."""
  import psutil
  process = psutil.Process(pid)
  total = 0.0
  for member in [process, *process.children(recursive=True)]:
    try:
      times = member.cpu_times()
      total += times.user + times.system
    except psutil.NoSuchProcess:
      pass
  return total


def measured(url: str, load: Load, work_dir: str, connections: int, seconds: int,
             server_pid: int) -> Dict:
  """One wrk row, with the CPU time per request of the server and of wrk: what a request costs,
  whatever else the machine runs (wall-clock figures depend on the load, CPU time hardly)."""
  server_before = cpu_seconds(server_pid)
  wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
  result = wrk(url, load, work_dir, connections, seconds)["wait"]()
  wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
  requests = result["rps"] * seconds
  result["server_cpu_us"] = (cpu_seconds(server_pid) - server_before) / requests * 1e6
  result["wrk_cpu_us"] = ((wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime -
                           wrk_before.ru_stime) / requests * 1e6)
  return result


def wrk(url: str, load: Load, work_dir: str, connections: int, seconds: int) -> Dict:
  """Starts wrk on `load`; returns a dict whose "wait" gives the parsed results."""
  script = os.path.join(work_dir, f"{load.name}_{connections}.lua")
  headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in load.headers.items())
  with open(script, "w") as f:
    f.write(WRK_SCRIPT.format(method=load.method, headers=headers, body=load.body_path))
  process = subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                              "-s", script, url + load.path], stdout=subprocess.PIPE, text=True)
  return {"wait": lambda: _parse_wrk(process.communicate()[0], load)}


def _parse_wrk(out: str, load: Load) -> Dict:
  rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
  percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
  non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
  return {"rps": rps, "images": rps * load.images, "p50_ms": percentiles["50"],
          "p99_ms": percentiles["99"], "non_2xx": int(non_2xx.group(1)) if non_2xx else 0}


def _ms(value: str) -> float:
  number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
  return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_loads(url: str, loads: Dict[str, Load], work_dir: str, args, server_pid: int) -> Dict:
  """Every wrk row, one after the other (the health row runs beside two batch connections)."""
  results = {"single": {c: measured(url, loads["predict_1"], work_dir, c, args.seconds,
                                    server_pid) for c in args.concurrency}}
  results["infer_single"] = measured(url, loads["infer_1"], work_dir, 4, args.seconds,
                                     server_pid)
  results["batched"] = {name: measured(url, loads[name], work_dir, 4, args.seconds, server_pid)
                        for name in ("predict_32", "predict_256", "infer_32", "infer_256")}
  batches = wrk(url, loads["predict_256"], work_dir, 2, args.seconds)
  health = wrk(url, loads["healthz"], work_dir, 1, args.seconds)
  results["health_under_batches"] = (health["wait"](), batches["wait"]())
  return results


def time_loop(fn, seconds: float = 3.0) -> float:
  """Calls of fn() per CPU second of this process (what one free core does, whatever else the
  machine runs), over about `seconds` of CPU time."""
  fn()
  count, start = 0, time.process_time()
  while time.process_time() - start < seconds:
    fn()
    count += 1
  return count / (time.process_time() - start)


def asgi_requests_per_second(store: model_store.ModelStore, body: bytes,
                             seconds: float = 3.0) -> float:
  """:predict calls per second on the ASGI app itself: our dispatch and handler, no HTTP server."""
  app = app_lib.create_app(store)
  scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
           "scheme": "http", "path": app_lib.PREDICT_PATH, "query_string": b"",
           "headers": [(b"content-type", b"application/json"),
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

  async def loop() -> float:  # Per CPU second, as time_loop.
    await call()
    count, start = 0, time.process_time()
    while time.process_time() - start < seconds:
      await call()
      count += 1
    return count / (time.process_time() - start)
  return asyncio.run(loop())


def ceilings(store: model_store.ModelStore, images: np.ndarray, body: bytes) -> List[tuple]:
  """(what, per second) in this process, one thread, no HTTP."""
  loaded = store.current
  with open(os.path.join(loaded.path, push_manifest.MODEL_FILE), "rb") as f:
    classifier = int8_runtime.Int8Classifier(f.read(), num_threads=1)
  rows = [("interpreter, batch 1 (Int8Classifier.predict_pixels: quantize + invoke + "
           "dequantize)", time_loop(lambda: classifier.predict_pixels(images[:1])), "images")]
  for b in BATCH_SIZES:
    rows.append((f"interpreter, batch {b}",
                 b * time_loop(lambda b=b: classifier.predict_pixels(images[:b])), "images"))
  rows.append(("the served version, batch 1 (integer pixels through the quantization table)",
               time_loop(lambda: loaded.predict_pixels(images[:1])), "images"))
  rows.append(("the ASGI app in process (dispatch, parse, checks, predict, JSON reply, "
               "metrics; no HTTP server, no socket)", asgi_requests_per_second(store, body),
               "requests"))
  return rows


def report(args, loaded: model_store.LoadedModel, results: Dict, rows: List[tuple],
           load_before: str, load_after: str) -> None:
  """The Markdown section for BENCHMARKS.md."""
  size = os.path.getsize(os.path.join(loaded.path, push_manifest.MODEL_FILE))
  print(f"## Serving\n\n{datetime.date.today()}, `.venv/bin/python -m benchmarks.bench_serving "
        f"--push-destination {args.push_destination} --seconds {args.seconds} --workers "
        f"{args.workers}`: `python -m serving serve` (uvicorn + uvloop + httptools, {args.workers} worker "
        f"process{'es' if args.workers > 1 else ''}) on version {loaded.version} "
        f"({loaded.device}, `{push_manifest.MODEL_FILE}` {size:,} bytes), loaded by "
        f"`wrk -t1 --latency` (keep-alive, {args.seconds} s per row) on the same machine: "
        f"**client and server share its {os.cpu_count()} cores**. Machine: {machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}; load average "
        f"{load_before} before, {load_after} after.\n")
  print("Single-image TF Serving `:predict` (`{\"instances\": [28x28 pixels]}`, JSON):\n")
  print("| connections | requests/s | p50 ms | p99 ms | non-2xx | server CPU µs/request | "
        "wrk CPU µs/request |\n| --- | --- | --- | --- | --- | --- | --- |")
  for c, r in results["single"].items():
    print(f"| {c} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non_2xx']} | "
          f"{r['server_cpu_us']:.0f} | {r['wrk_cpu_us']:.0f} |")
  r = results["infer_single"]
  print(f"\nSingle-image OIP `infer`, binary tensors in and out, 4 connections: "
        f"**{r['rps']:,.0f} requests/s**, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"{r['non_2xx']} non-2xx; server CPU {r['server_cpu_us']:.0f} µs/request, wrk "
        f"{r['wrk_cpu_us']:.0f}.\n")
  print("Batches, 4 connections:\n")
  print("| request | requests/s | images/s | p50 ms | p99 ms | non-2xx | server CPU µs/image |\n"
        "| --- | --- | --- | --- | --- | --- | --- |")
  for name, r in results["batched"].items():
    kind, count = name.split("_")
    what = (f"`:predict` JSON, {count} images" if kind == "predict"
            else f"OIP `infer` binary, {count} images")
    print(f"| {what} | {r['rps']:,.0f} | {r['images']:,.0f} | {r['p50_ms']:.2f} | "
          f"{r['p99_ms']:.2f} | {r['non_2xx']} | {r['server_cpu_us'] / int(count):.0f} |")
  health, batches = results["health_under_batches"]
  print(f"\n`GET /healthz` at 1 connection while 2 connections send 256-image JSON batches "
        f"({batches['images']:,.0f} images/s): {health['rps']:,.0f} requests/s, p50 "
        f"{health['p50_ms']:.2f} ms, **p99 {health['p99_ms']:.2f} ms**.\n")
  print("The ceiling, in one Python thread without HTTP, per second of CPU time (one free core):\n")
  print("| measure | per CPU second |\n| --- | --- |")
  for what, value, unit in rows:
    print(f"| {what} | {value:,.0f} {unit} |")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--push-destination", default=os.path.join("output", "pushed_models"))
  parser.add_argument("--seconds", type=int, default=10)
  parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
  parser.add_argument("--workers", type=int, default=1)
  args = parser.parse_args()
  if not shutil.which("wrk"):
    sys.exit("wrk is not installed (apt-get install wrk)")
  store = model_store.ModelStore(args.push_destination)
  loaded = store.refresh()
  if loaded is None:
    sys.exit(f"no pushed version under {args.push_destination}: run `make run` first")
  images = idx.read_images(EVAL_IMAGES)
  work_dir = tempfile.mkdtemp(prefix="bench_serving_")
  loads = write_loads(images, work_dir)
  load_before = loadavg()
  port = free_port()
  server = start_server(args.push_destination, port, os.path.join(work_dir, "server.log"),
                        args.workers)
  try:
    results = run_loads(f"http://127.0.0.1:{port}", loads, work_dir, args, server.pid)
  finally:
    server.terminate()
    server.wait()
  load_after = loadavg()
  with open(loads["predict_1"].body_path, "rb") as f:
    rows = ceilings(store, images, f.read())
  report(args, loaded, results, rows, load_before, load_after)


if __name__ == "__main__":
  main()
