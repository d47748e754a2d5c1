"""`mnist-tfx kubeflow compile|submit`: the pipeline on Kubeflow Pipelines v2.

`compile` writes the pipeline spec; `submit` compiles it and starts a run through `kfp.Client`.
Both take the pipeline options every runner shares (pipeline/options.py); only the cluster's own
flags are defined here.
"""

import argparse
import os
import sys

from core import errors
from core import paths
from pipeline import configs
from pipeline import options

from . import submit


def env_variable(text: str):
  """An argparse type: NAME=VALUE."""
  name, sep, value = text.partition("=")
  if not sep or not name:
    raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
  return name, value


def secret_variable(text: str):
  """An argparse type: SECRET:KEY=NAME, as runner.SecretEnv."""
  from . import runner
  secret_key, sep, name = text.partition("=")
  secret, colon, key = secret_key.partition(":")
  if not (sep and colon and secret and key and name):
    raise argparse.ArgumentTypeError(f"expected SECRET:KEY=NAME, got {text!r}")
  return runner.SecretEnv(secret, key, name)


def _add_pod_options(parser: argparse.ArgumentParser) -> None:
  """What every task's pod gets besides the image: variables, and variables from secrets."""
  parser.add_argument(
      "--env", action="append", default=[], type=env_variable, metavar="NAME=VALUE",
      help="A variable of every task's container, repeatable, e.g. the object store's "
      "--env AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000 --env AWS_REGION=us-east-1. "
      "Not for secrets: the spec is stored and shown in clear.")
  parser.add_argument(
      "--secret-env", action="append", default=[], type=secret_variable,
      metavar="SECRET:KEY=NAME",
      help="A variable every task's pod takes from KEY of the Kubernetes secret SECRET in the "
      "run's namespace (the platform spec kfp-kubernetes' use_secret_as_env writes), repeatable, "
      "e.g. --secret-env mlpipeline-minio-artifact:accesskey=AWS_ACCESS_KEY_ID "
      "--secret-env mlpipeline-minio-artifact:secretkey=AWS_SECRET_ACCESS_KEY.")


def _add_compile_options(parser: argparse.ArgumentParser) -> None:
  """What both subcommands compile: the image, the cluster's paths and the shared options."""
  parser.add_argument("--image", required=True,
                      help="Container image for every component, built from kubeflow/Dockerfile "
                      "and pushed to a registry the cluster pulls from, best by digest, e.g. "
                      "us-docker.pkg.dev/PROJECT/REPO/mnist-edgetpu-tfx@sha256:... (the cache "
                      "key holds the image's name: a mutable tag such as :latest is warned "
                      "about).")
  parser.add_argument("--pipeline-root", required=True,
                      help="Artifact root in object storage the pods can write: gs://BUCKET/PATH "
                      "or s3://BUCKET/PATH (MinIO and other S3-compatible stores through s3:// "
                      "and AWS_ENDPOINT_URL). Every artifact, the trainer's checkpoints and "
                      "(unless --push-destination says otherwise) the pushed models "
                      f"PIPELINE_ROOT/{paths.PUSHED_MODELS_DIR} go under it.")
  parser.add_argument("--data-dir", required=True,
                      help="MNIST-format IDX files in object storage (the four standard names, "
                      "gzipped or raw), gs://BUCKET/PATH or s3://BUCKET/PATH; read here too, to "
                      "fingerprint the data for the cache key.")
  parser.add_argument("--pipeline-name", default=configs.PIPELINE_NAME, type=options.pipeline_name,
                      help=f"The pipeline's name, following {configs.PIPELINE_NAME_RULE}; runs of "
                      "one name share Kubeflow Pipelines' cache "
                      "(default: %(default)s).")
  options.add_beam_args(parser, "Default: Beam's DirectRunner inside each component's pod; "
                        "e.g. --beam-arg=--runner=DataflowRunner --beam-arg=--project=P "
                        "--beam-arg=--region=R --beam-arg=--temp_location=gs://bucket/tmp, or "
                        "--beam-arg=--runner=FlinkRunner --beam-arg=--flink_master=HOST:8081 "
                        "--beam-arg=--environment_type=EXTERNAL ...")
  _add_pod_options(parser)
  options.add_pipeline_options(parser)


def add_parser(commands) -> None:
  """Registers `kubeflow compile` and `kubeflow submit` on the `mnist-tfx` subparsers."""
  kfp = commands.add_parser(
      "kubeflow", help="Compile the pipeline for Kubeflow Pipelines v2, or submit a run.",
      description="Compile the pipeline into a Kubeflow Pipelines v2 spec (compile) or compile "
      "it and start a run on a Kubeflow Pipelines server (submit).")
  steps = kfp.add_subparsers(dest="kubeflow_command", required=True, metavar="COMMAND")

  compile_parser = steps.add_parser(
      "compile", help="Write the pipeline spec (pipeline.yaml) for the KFP UI or kfp.Client.",
      description="Writes the pipeline spec: every component runs in IMAGE through "
      "`python -m mnist_tfx.kubeflow.entrypoint`. A .yaml file is what the Kubeflow Pipelines UI "
      "and kfp.Client upload; a .json file is the PipelineJob Vertex AI Pipelines takes.")
  compile_parser.add_argument(
      "--output", default=_default_output(),
      help="The spec file: .yaml/.yml (PipelineSpec) or .json (PipelineJob) "
      "(default: %(default)s).")
  _add_compile_options(compile_parser)
  compile_parser.set_defaults(func=compile_command)

  submit_parser = steps.add_parser(
      "submit", help="Compile the pipeline and start a run on a Kubeflow Pipelines server.",
      description="Compiles the pipeline (as `compile` does) and starts a run through the "
      "Pipelines v2beta1 API (the calls of kfp.Client.create_run_from_pipeline_package, each "
      "bounded by --api-timeout), printing the run's URL. Authentication as the KFP SDK does "
      "it: a service-account token read from --token-path or from the file named by "
      "KF_PIPELINES_SA_TOKEN_PATH (refreshed on each request), else none (e.g. through "
      "`kubectl port-forward`). The token is never printed or written anywhere.")
  submit_parser.add_argument("--host", required=True,
                             help="The Kubeflow Pipelines API endpoint, e.g. "
                             "http://localhost:8080 after `kubectl port-forward -n kubeflow "
                             "svc/ml-pipeline-ui 8080:80`.")
  submit_parser.add_argument("--experiment", default="Default",
                             help="Experiment to run in, created when missing "
                             "(default: %(default)s).")
  submit_parser.add_argument("--run-name",
                             help="The run's name (default: the pipeline name and the time).")
  submit_parser.add_argument("--namespace",
                             help="Kubernetes namespace of a multi-user deployment (default: "
                             "the client's context, none in single-user mode).")
  submit_parser.add_argument("--token-path",
                             help="File holding the bearer token (e.g. a projected "
                             "service-account token); default: $KF_PIPELINES_SA_TOKEN_PATH.")
  submit_parser.add_argument("--api-timeout", type=float,
                             default=submit.DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                             help="Give up on any API call not answered within this time "
                             "(default: %(default)s s).")
  submit_parser.add_argument("--output", default=None,
                             help="Also keep the submitted spec here (default: a temporary file, "
                             "removed after the submission).")
  _add_compile_options(submit_parser)
  submit_parser.set_defaults(func=submit_command)


def _default_output() -> str:
  from . import runner
  return runner.SPEC_FILE_NAME


def _compile(args: argparse.Namespace, output: str):
  """Raises PipelineInputError for a path the pods cannot read or settings the pipeline refuses."""
  from . import runner
  warning = runner.mutable_image_warning(args.image)
  if warning:
    print(f"warning: {warning}", file=sys.stderr, flush=True)
  try:
    return runner.compile_pipeline(
        output, image=args.image, pipeline_root=args.pipeline_root, data_dir=args.data_dir,
        beam_pipeline_args=args.beam_args, pipeline_name=args.pipeline_name,
        env=dict(args.env), secret_env=args.secret_env, **options.pipeline_options(args))
  except errors.PipelineInputError:
    raise
  except ValueError as error:  # Refused by create_pipeline (thresholds, hyperparameters, ...).
    raise errors.PipelineInputError(f"bad settings: {error}") from error


def compile_command(args: argparse.Namespace) -> int:
  _compile(args, args.output)
  print(f"Kubeflow Pipelines v2 spec: {args.output}")
  return errors.EXIT_OK


def submit_command(args: argparse.Namespace) -> int:
  import tempfile

  with tempfile.TemporaryDirectory() as tmp:
    output = args.output or os.path.join(tmp, _default_output())
    _compile(args, output)
    url = submit.submit(output, host=args.host, pipeline_root=args.pipeline_root,
                        experiment=args.experiment, run_name=args.run_name,
                        namespace=args.namespace, token_path=args.token_path,
                        timeout_seconds=args.api_timeout)
  print(f"Run started: {url}")
  return errors.EXIT_OK
