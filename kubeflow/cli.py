"""`mnist-tfx kubeflow`: compile the pipeline into a Kubeflow Pipelines v2 job spec."""

import argparse
import os

from mnist_tfx import options
from pipeline import configs


def add_parser(commands) -> None:
  """Registers the `kubeflow` subcommand on the `mnist-tfx` subparsers."""
  kfp = commands.add_parser(
      "kubeflow", help="Compile the pipeline into a Kubeflow Pipelines v2 job spec.",
      description="Writes OUTPUT_DIR/pipeline.json: the same pipeline, every component in IMAGE "
      "(built from kubeflow/Dockerfile). Submit it with the KFP client or UI, e.g. "
      "kfp.Client(host).create_run_from_pipeline_package('pipeline.json').")
  kfp.add_argument("--image", required=True, help="Container image for every component.")
  kfp.add_argument("--pipeline-root", required=True,
                   help="Artifact root the cluster can write, e.g. gs://bucket/mnist-edgetpu.")
  kfp.add_argument("--data-dir", required=True,
                   help="MNIST-format IDX files the cluster can read, e.g. gs://bucket/mnist.")
  kfp.add_argument("--output-dir", default=".", help="Where pipeline.json goes (default: .).")
  kfp.add_argument("--pipeline-name", default=configs.PIPELINE_NAME, type=options.pipeline_name,
                   help=f"The pipeline's name, following {configs.PIPELINE_NAME_RULE} "
                   "(default: %(default)s).")
  options.add_beam_args(kfp, "Default: Beam's own (DirectRunner inside each component's pod).")
  options.add_pipeline_options(kfp)
  kfp.set_defaults(func=compile_command)


def compile_command(args: argparse.Namespace) -> int:
  from mnist_tfx.kubeflow import runner
  runner.compile_pipeline(args.output_dir, image=args.image, pipeline_root=args.pipeline_root,
                          data_dir=args.data_dir, beam_pipeline_args=args.beam_args,
                          pipeline_name=args.pipeline_name, **options.pipeline_options(args))
  print(f"Kubeflow Pipelines v2 job spec: {os.path.join(args.output_dir, runner.SPEC_FILE_NAME)}")
  return 0
