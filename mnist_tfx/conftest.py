"""The one successful slice run shared by the CLI, console and report tests of mnist_tfx."""

import pytest

from tests import cli_runs


@pytest.fixture(scope="session")
def slice_run(mnist_slice_dir, tmp_path_factory) -> cli_runs.CliRun:
  """One successful run of the whole pipeline on the slice, shared by the CLI and report tests."""
  run = cli_runs.run_cli(str(tmp_path_factory.mktemp("pipeline")), mnist_slice_dir)
  assert run.returncode == 0, run.stderr
  return run
