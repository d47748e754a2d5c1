"""`mnist-tfx`: run the pipeline locally, compile it for Kubeflow and look at what it produced.

Each subcommand registers its own options; the pipeline's options are shared (options.py), so a
local run and a Kubeflow compilation take the same settings.
"""

import argparse
import logging
import os
import signal
import sys
import tempfile
import time
from typing import List, Optional, TextIO
import warnings

from components.evaluator import blessing as blessing_lib
from components.evaluator import constants as evaluator_constants
from core import errors
from core import paths
from mnist_tfx import console
from pipeline import object_store
from pipeline import options


def _quiet_libraries(tf_cpp_min_log_level: str) -> None:
  """Keeps TensorFlow's C++ start-up notices and the Google clients' deprecation warnings out.

  Set before TensorFlow is imported (TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, at import), and
  through the environment so that Beam's worker processes inherit them. A value the user set wins.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tf_cpp_min_log_level)
  os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
  warnings.filterwarnings("ignore", category=FutureWarning)
  warnings.filterwarnings("ignore", category=DeprecationWarning)


def _add_run_parser(commands) -> None:
  run = commands.add_parser(
      "run", help="Run the pipeline locally (LocalDagRunner on Apache Beam).",
      description="Run the whole pipeline with TFX's LocalDagRunner and print a summary. "
      "Components whose inputs and parameters did not change are served from the cache; the "
      "Trainer's cache also follows the training code (every file of trainer_module/ and the "
      "project modules it imports), so edited training code is retrained.")
  data = run.add_mutually_exclusive_group()
  data.add_argument(
      "--data-dir", default=paths.bundled_data_dir(),
      help="A directory (any TFX filesystem path) with MNIST-format IDX files under the four "
      "standard names, gzipped or raw, e.g. MNIST, Fashion-MNIST or KMNIST. A SHA256SUMS file "
      "beside them is verified. Default: the MNIST bundled with this repository.")
  data.add_argument(
      "--download", action="store_true",
      help="Fetch the four MNIST files from the public mirrors into --download-cache (verifying "
      "SHA-256) and use them instead of --data-dir.")
  run.add_argument("--download-cache", default=paths.DEFAULT_DOWNLOAD_CACHE,
                   help="Cache directory for --download (default: %(default)s).")
  options.add_pipeline_root(run)
  options.add_beam_args(run, "Default: the multi-processing DirectRunner with one worker per "
                        "core.")
  run.add_argument("--no-cache", action="store_true",
                   help="Run every component again instead of reusing cached outputs.")
  options.add_pipeline_options(run)
  _add_run_options(run)
  run.set_defaults(func=run_command)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
  """How `mnist-tfx run` reports: console verbosity, and whether an unblessed model is a failure."""
  console = parser.add_mutually_exclusive_group()
  console.add_argument(
      "-v", "--verbose", action="store_true",
      help="Show every log line (TFX, Beam, absl, TensorFlow) and tracebacks on the console as "
      "well as in the log file.")
  console.add_argument(
      "-q", "--quiet", action="store_true",
      help="Print the summary alone (no per-component lines, no progress display).")
  parser.add_argument(
      "--require-blessed", action="store_true",
      help="Exit with code 2 and the evaluator's reason when the model is not blessed (by default "
      "such a run succeeds and pushes nothing).")


def _add_tensorboard_parser(commands) -> None:
  board = commands.add_parser(
      "tensorboard", help="Start TensorBoard on the latest training run and evaluation.",
      description="Looks up the newest Trainer run (scalars, quantization ranges, histograms, "
      "images, the graph with its FakeQuant ops) and the newest evaluation in the pipeline's ML "
      "Metadata and serves them with TensorBoard until interrupted (Ctrl-C).")
  options.add_pipeline_root(board)
  board.add_argument("--host", default="127.0.0.1",
                     help="Address to listen on (default: %(default)s, this machine only; "
                     "0.0.0.0 for every interface).")
  board.add_argument("--port", type=int, default=6006,
                     help="Port (default: %(default)s; 0 picks a free one).")
  board.set_defaults(func=tensorboard_command)


def _add_report_parser(commands) -> None:
  report = commands.add_parser(
      "report", help="Write the run report (PIPELINE_ROOT/report.html) of the last run again.",
      description="Renders the static HTML report of the pipeline's last run from its ML "
      "Metadata and artifacts (`run` writes it at the end of every run) and prints its path.")
  options.add_pipeline_root(report)
  report.set_defaults(func=report_command)


def build_parser() -> argparse.ArgumentParser:
  from mnist_tfx.compare import cli as compare_cli
  from mnist_tfx.kubeflow import cli as kubeflow_cli
  from serving import cli as serving_cli
  parser = argparse.ArgumentParser(
      prog="mnist-tfx",
      description="A TFX pipeline that turns raw MNIST into a quantized model for the Edge TPU.")
  commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
  _add_run_parser(commands)
  _add_tensorboard_parser(commands)
  _add_report_parser(commands)
  kubeflow_cli.add_parser(commands)
  serving_cli.add_parser(commands)
  compare_cli.add_parser(commands)
  return parser


class NotBlessedError(errors.PipelineInputError):
  """--require-blessed was given and the evaluator did not bless the model."""


def _verbosity(args: argparse.Namespace) -> console.Verbosity:
  if args.verbose:
    return console.Verbosity.VERBOSE
  return console.Verbosity.QUIET if args.quiet else console.Verbosity.NORMAL


def run_command(args: argparse.Namespace) -> int:
  verbosity = _verbosity(args)
  console.set_progress_display(verbosity)
  pipeline_root = options.absolute_local_path(args.pipeline_root)
  log_path = console.new_log_path(pipeline_root)
  try:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
  except OSError as error:
    raise errors.PipelineInputError(f"cannot write the log file {log_path}: {error}") from error
  if verbosity != console.Verbosity.QUIET:
    print(f"Log file: {log_path}", file=sys.stderr, flush=True)
  failure, component, failed_component, summary_text, report_path = None, None, None, None, None
  with console.output_to_log(log_path, verbosity) as terminal:
    try:
      _run_pipeline(args, pipeline_root, terminal, verbosity)
    except Exception as error:  # pylint: disable=broad-except
      failure = error
      component = getattr(error, "component", None)
      failed_component = component or "mnist-tfx run"
      logging.exception("The run failed in %s.", failed_component)
    try:
      summary_text, report_path = _summarize(
          args, pipeline_root, log_path,
          # The report's headline: "MnistExampleGen failed: ...", or "the run failed: ...".
          errors.error_line(failure, component or "the run") if failure else None)
    except Exception as error:  # pylint: disable=broad-except
      logging.exception("Cannot summarize the run.")
      if failure is None:
        failure, failed_component = error, "mnist-tfx run (summary and report)"
  if summary_text:
    print(summary_text)
  print(f"Log file:            {log_path}")
  if report_path:
    print(f"Run report:          {report_path}")
  sys.stdout.flush()
  if failure is None:
    return errors.EXIT_OK
  return errors.report(failure, failed_component, log_path)


def _run_pipeline(args: argparse.Namespace, pipeline_root: str, terminal: TextIO,
                  verbosity: console.Verbosity) -> None:
  """Runs the pipeline, printing a console line per component; errors name the component.

  Raises: what the failed component raised, with the attribute `component` set to its id.
  """
  # Imported here so that `--help` answers at once; TFX takes many seconds to import.
  from ml_metadata.proto import metadata_store_pb2

  from components.evaluator import component as evaluator_component
  from mnist_tfx import local_runner
  from mnist_tfx import mlmd_queries
  from mnist_tfx import summary
  from pipeline import pipeline as pipeline_def
  data_dir = args.data_dir
  if data_dir is None and not args.download:
    raise errors.PipelineInputError(
        "no --data-dir given, and this installation carries no bundled MNIST (it ships with the "
        "repository's checkout): pass --data-dir DIR or --download")
  if args.download:
    from components.mnist_example_gen import download  # Only users with network need it.
    data_dir = download.fetch_mnist(args.download_cache)
  metadata_config = local_runner.metadata_config(pipeline_root)
  try:
    pipeline = pipeline_def.create_pipeline(
        pipeline_root=pipeline_root,
        data_dir=data_dir,
        pipeline_name=args.pipeline_name,
        metadata_connection_config=metadata_config,
        beam_pipeline_args=args.beam_args or local_runner.default_beam_args(),
        enable_cache=not args.no_cache,
        **options.pipeline_options(args),
    )
  except ValueError as error:  # Settings the pipeline refuses when it is built: the user's to fix.
    raise errors.PipelineInputError(f"bad settings: {error}") from error

  def describe(node_id: str) -> str:
    state, outputs = mlmd_queries.node_run_outputs(metadata_config, args.pipeline_name, node_id)
    figure = summary.one_figure(outputs)
    if state == metadata_store_pb2.Execution.CACHED:
      return f"{figure} (cached)" if figure else "cached"
    return figure

  lines = console.ComponentLines(terminal if verbosity != console.Verbosity.QUIET else None,
                                 [component.id for component in pipeline.components], describe)
  root_logger = logging.getLogger()
  root_logger.addHandler(lines)
  try:
    local_runner.run(pipeline)
  except Exception as error:
    error.component = lines.running
    raise
  finally:
    root_logger.removeHandler(lines)
  if args.require_blessed:
    evaluator_id = next(component.id for component in pipeline.components
                        if isinstance(component, evaluator_component.Int8Evaluator))
    _, outputs = mlmd_queries.node_run_outputs(metadata_config, args.pipeline_name, evaluator_id)
    blessing = outputs.get("ModelBlessing")
    if blessing is None or not summary.is_blessed(blessing):
      reason = (blessing.get_string_custom_property(evaluator_constants.BLESSING_MESSAGE_PROPERTY)
                if blessing else "no ModelBlessing was published")
      error = NotBlessedError("the model was not blessed (--require-blessed): "
                              f"{reason.removeprefix(blessing_lib.NOT_BLESSED + ': ')}")
      error.component = evaluator_id
      raise error


def _summarize(args: argparse.Namespace, pipeline_root: str, log_path: str,
               failure: Optional[str]):
  """(the summary text, the run report's path) of the pipeline's last run, which ended with the
  line `failure` when it failed."""
  from mnist_tfx import local_runner
  from mnist_tfx import report
  from mnist_tfx import summary
  metadata_config = local_runner.metadata_config(pipeline_root)
  text = summary.render(metadata_config, args.pipeline_name, pipeline_root,
                        local_runner.metadata_path(pipeline_root))
  report_path = report.write(metadata_config, args.pipeline_name, pipeline_root, log_path,
                             failure)
  return text, report_path


def _existing_metadata(args: argparse.Namespace):
  """(pipeline root, the MLMD connection) of a root a run has written.

  Raises:
    PipelineInputError: the root holds no ML Metadata (nothing ran there; nothing is created).
  """
  from mnist_tfx import local_runner
  pipeline_root = options.absolute_local_path(args.pipeline_root)
  if not os.path.isfile(local_runner.metadata_path(pipeline_root)):
    raise errors.PipelineInputError(
        f"no pipeline has run under {pipeline_root} (no "
        f"{local_runner.metadata_path(pipeline_root)}); run `mnist-tfx run` first, or pass the "
        "--pipeline-root it used")
  return pipeline_root, local_runner.metadata_config(pipeline_root)


def tensorboard_command(args: argparse.Namespace) -> int:
  from mnist_tfx import tensorboard
  pipeline_root, metadata_config = _existing_metadata(args)
  logdirs = tensorboard.find_logdirs(metadata_config, args.pipeline_name, pipeline_root)
  # A SIGTERM stops the server like Ctrl-C does, so the links' directory is removed either way.
  signal.signal(signal.SIGTERM, signal.default_int_handler)
  with tempfile.TemporaryDirectory(prefix="mnist-tfx-tensorboard-") as serve_dir:
    url = tensorboard.start(logdirs, args.host, args.port, serve_dir)
    for name, path in logdirs.items():
      print(f"{name}: {path}")
    print(f"TensorBoard at {url} (Ctrl-C to stop)", flush=True)
    try:
      while True:
        time.sleep(3600)
    except KeyboardInterrupt:
      return 0


def report_command(args: argparse.Namespace) -> int:
  from mnist_tfx import report
  pipeline_root, metadata_config = _existing_metadata(args)
  print(report.write(metadata_config, args.pipeline_name, pipeline_root))
  return errors.EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
  """Runs one command; its exit code is core.errors' (0 success, 2 bad input, 1 otherwise)."""
  args = build_parser().parse_args(argv)
  if argv is None:
    # What this command line accepted is never another library's to parse: absl (inside Beam and
    # TFX) reads sys.argv for its own flags, and would take `run -v` for its --verbosity.
    sys.argv[1:] = []
  # `run` keeps TensorFlow's C++ errors (in its log file); the other commands print only their own.
  _quiet_libraries("2" if args.func is run_command else "3")
  from absl import logging as absl_logging
  # `run` logs everything into its log file; the other commands print what they do.
  absl_logging.set_verbosity(absl_logging.INFO if args.func is run_command else
                             absl_logging.WARNING)
  try:
    # Any s3:// path among the options: TensorFlow's s3:// before anything reads it, and the exit
    # code kept (pipeline/s3_filesystem.py). `kubeflow` enables it itself once its light checks
    # passed (kubeflow/runner.py, compile_pipeline), so that they come before TensorFlow's import.
    if args.command != "kubeflow":
      object_store.enable_s3_if_needed(value for value in vars(args).values()
                                       if isinstance(value, str))
    return args.func(args)
  except Exception as error:  # pylint: disable=broad-except  # One line and the exit code.
    return errors.report(error, f"mnist-tfx {_command_name(args)}")


def _command_name(args: argparse.Namespace) -> str:
  return " ".join(filter(None, (args.command, getattr(args, "kubeflow_command", None))))


if __name__ == "__main__":
  sys.exit(main())
