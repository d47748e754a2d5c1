"""The one successful slice run shared by the CLI, console and report tests of mnist_tfx."""

import os

import pytest

from tests import cli_runs


@pytest.fixture(scope="session")
def slice_run(mnist_slice_dir, tmp_path_factory) -> cli_runs.CliRun:
  """One successful run of the whole pipeline on the slice, shared by the CLI and report tests."""
  # A comma, a space and a non-ASCII letter: any legal path must work, TensorBoard included.
  pipeline_root = os.path.join(str(tmp_path_factory.mktemp("pipeline")), "runs, caf\u00e9 v1")
  run = cli_runs.run_cli(pipeline_root, mnist_slice_dir)
  assert run.returncode == 0, run.stderr
  return run
