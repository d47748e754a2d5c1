"""`mnist-tfx serve` and `mnist-tfx predict`: the pushed model over HTTP and on image files.

Nothing here imports TensorFlow (serving needs numpy, LiteRT, FastAPI and Pillow only); FastAPI
and uvicorn are imported inside the commands so that `--help` answers at once. `python -m serving`
runs the same two commands without the pipeline's command (the serving image has no TensorFlow).
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
from typing import Iterator

from core import errors
from core import paths
from core import push_manifest
from serving import model_store
from serving import server

DEFAULT_PORT = 8501  # TensorFlow Serving's REST port.
# What LiteRT's C++ logger prints to stderr when a process makes its first CPU interpreter
# (XNNPACK is its default CPU delegate). Its minimum severity (tflite's MinimalLogger) is set by no
# environment variable (TF_CPP_MIN_LOG_LEVEL is TensorFlow's) and no Python API, and
# ai_edge_litert exports no symbol to set it: `predict` filters the line out of its stderr.
XNNPACK_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"


def _add_model_options(parser: argparse.ArgumentParser, use_version: str) -> None:
  """The options serve and predict share; `use_version` says what the command does with the
  version --model-version names ("Serve", "Classify with")."""
  parser.add_argument(
      "--push-destination", default=paths.default_push_destination(),
      help="The local directory holding the pusher's versions DEST/<N>/ (default: ./%(default)s, "
      "where `mnist-tfx run` pushes). A destination in object storage (gs://, s3://) is copied "
      "to a local directory first, as KServe's storage initializer does, e.g. `gsutil -m rsync "
      "-r gs://bucket/pushed_models models`.")
  parser.add_argument(
      "--model-version", type=_positive_int, metavar="N",
      help=f"{use_version} version N only (default: the newest version that verifies and "
      "loads).")


def add_parser(commands) -> None:
  """Registers `serve` and `predict` on the `mnist-tfx` (or `python -m serving`) subparsers."""
  serve = commands.add_parser(
      "serve", help="Serve the pushed model: TF Serving's REST API and a page to draw digits.",
      description="Serves the newest pushed version that matches its manifest's sha256 (on the "
      "Edge TPU when model_edgetpu.tflite and libedgetpu.so.1 are there, else on the CPU) and "
      "switches to newer versions as they are pushed. TF Serving's REST API: GET "
      "/v1/models/mnist[/versions/N][/metadata]; POST /v1/models/mnist[/versions/N]:predict, "
      "/v1/models/mnist:classify_image. The Open Inference Protocol (KServe V2, Triton's "
      "clients): GET /v2, /v2/health/live, /v2/health/ready, /v2/models/mnist[/ready]; POST "
      "/v2/models/mnist/infer (JSON or binary tensors). Also /metrics, /healthz, /readyz, "
      f"/docs and the page at /. {push_manifest.MODEL_FILE} runs with LiteRT, without "
      "TensorFlow.")
  _add_model_options(serve, "Serve")
  serve.add_argument("--host", default="127.0.0.1",
                     help="Address to listen on (default: %(default)s, this machine only; "
                     "0.0.0.0 for every interface).")
  serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                     help="Port (default: %(default)s, TF Serving's REST port).")
  serve.add_argument("--poll-seconds", type=float, default=model_store.DEFAULT_POLL_SECONDS,
                     help="How often to look for a newer version (default: %(default)s).")
  serve.add_argument("--request-timeout", type=_request_timeout,
                     default=server.DEFAULT_REQUEST_TIMEOUT_SECONDS, metavar="SECONDS",
                     help="A request's headers must arrive within SECONDS of the connection "
                     "opening (or of the previous response), and its body within SECONDS more; "
                     "slower clients are disconnected or answered 408 (default: %(default)s, at "
                     "most 60).")
  serve.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                     help="Worker processes, each with its own model store and interpreters "
                     "(default: %(default)s; one per core the server may use).")
  serve.set_defaults(func=serve_command)

  predict = commands.add_parser(
      "predict", help="Classify PNG/JPEG images of digits with the pushed model.",
      description="Prints each file's class and probability. Images of any size: the digit is "
      "inverted when dark on light, cropped, scaled into 20x20 and centred in 28x28 as MNIST's "
      "digits were. Exit code 2 when a file cannot be read as an image.")
  predict.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files.")
  _add_model_options(predict, "Classify with")
  predict.add_argument("--json", action="store_true",
                       help="One JSON object per file, with all ten probabilities.")
  predict.set_defaults(func=predict_command)


def _request_timeout(value: str) -> float:
  seconds = float(value)
  if not 0 < seconds <= server.MAX_REQUEST_TIMEOUT_SECONDS:
    raise argparse.ArgumentTypeError(f"must be more than 0 and at most "
                                     f"{server.MAX_REQUEST_TIMEOUT_SECONDS:g}")
  return seconds


def _positive_int(value: str) -> int:
  number = int(value)
  if number < 1:
    raise argparse.ArgumentTypeError("must be 1 or more")
  return number


def _load_store(args: argparse.Namespace,
                poll_seconds: float = model_store.DEFAULT_POLL_SECONDS,
                log_destination: bool = True) -> model_store.ModelStore:
  store = model_store.ModelStore(args.push_destination, pinned_version=args.model_version,
                                 poll_seconds=poll_seconds, log_destination=log_destination)
  store.refresh()
  return store


def _describe(store: model_store.ModelStore) -> str:
  loaded = store.current
  skipped = "".join(f"\n  skipped: {reason}" for reason in store.failures.values())
  if loaded is None:
    if store.destination_problem:  # Missing, unreadable or empty.
      return store.destination_problem
    which = (f"no version {store.pinned_version}" if store.pinned_version is not None
             else "no complete version")
    return f"{which} to serve under {store.destination}{skipped}"
  device = "Edge TPU" if loaded.device == model_store.EDGETPU else "CPU"
  return f"version {loaded.version} on the {device} ({loaded.device_reason}){skipped}"


def serve_command(args: argparse.Namespace) -> int:
  """Serves until Ctrl-C or SIGTERM; exit code 0 once stopped, as the banner's way to stop it.

  Ctrl-C (SIGINT) ends with 0, not 130 (128 + SIGINT, a shell's code for a command cut short):
  it is how this command is meant to end, after a graceful shutdown, as `mnist-tfx tensorboard`
  ends; core.errors keeps 1 and 2 for failures.
  """
  try:
    store = _load_store(args, args.poll_seconds)
    print(f"Model: {_describe(store)}", flush=True)
    if store.current is None:
      print("/readyz answers 503 until a version is pushed there.", flush=True)
    print(f"Serving on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    server.run(server.Options(args.push_destination, args.model_version, args.poll_seconds,
                              args.host, args.port, args.request_timeout, args.workers))
  except KeyboardInterrupt:  # Before the server started, or uvicorn's re-raise once stopped.
    pass
  return errors.EXIT_OK


@contextlib.contextmanager
def _without_xnnpack_notice() -> Iterator[None]:
  """Runs the block with file descriptor 2 captured, then writes what it wrote there back to
  stderr, in order, less LiteRT's XNNPACK_NOTICE line: errors and warnings still show.

  Only for a one-shot command with no other thread writing to stderr, and only around the model
  loading: a crash inside the block (SIGABRT in LiteRT) would lose its last words, which the
  exit code then reports alone. The server keeps the notice: once per process, in its log.
  """
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      kept = b"".join(line for line in captured.read().splitlines(keepends=True)
                      if line != XNNPACK_NOTICE)
      while kept:
        kept = kept[os.write(2, kept):]


def predict_command(args: argparse.Namespace) -> int:
  from serving import preprocess
  with _without_xnnpack_notice():  # The model's first interpreter: LiteRT's notice.
    store = _load_store(args, log_destination=False)  # The failure line says what is wrong.
  loaded = store.current
  if loaded is None:
    raise errors.PipelineInputError(f"cannot predict: {_describe(store)}")
  failed = 0
  for path in args.images:
    try:
      with open(path, "rb") as f:
        pixels = preprocess.image_to_mnist(f.read())
    except (OSError, preprocess.ImageError) as e:
      failed += 1
      print(f"{path}: error: {e}", file=sys.stderr)
      continue
    probabilities = loaded.predict_pixels(pixels[None])[0]
    top = int(probabilities.argmax())
    if args.json:
      print(json.dumps({"file": path, "class": top, "label": loaded.labels[top],
                        "probability": float(probabilities[top]),
                        "probabilities": [float(p) for p in probabilities],
                        "model_version": loaded.version, "device": loaded.device}))
    else:
      print(f"{path}: {loaded.labels[top]} ({probabilities[top]:.1%})")
  if not args.json:
    print(f"(model version {loaded.version}, {loaded.device})", file=sys.stderr)
  return errors.EXIT_BAD_INPUT if failed else errors.EXIT_OK
