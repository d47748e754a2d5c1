"""Fixtures shared by the tests beside every package, and the `integration` tier.

A test is `integration` (skipped by `make test-fast`) when its module says so
(`pytestmark = pytest.mark.integration`) or when it uses a fixture that runs a Beam pipeline or
trains a model; it is also `slow` when it uses a container image (built with buildah).
"""

import pytest

pytest_plugins = ["tests.fixtures_data", "tests.fixtures_images", "tests.fixtures_model",
                  "tests.fixtures_serving", "tests.fixtures_wheel", "tests.data_validation",
                  "tests.fixtures_object_store"]

# Fixtures that run MnistExampleGen's Beam pipeline, train a model (seconds each) or start the
# object store stand-in (a server).
_HEAVY_FIXTURES = frozenset({
    "examples_artifact", "examples_dir", "trained_model", "trained_model_dir",
    "untrained_model_dir", "pushed_version", "validated_slices", "s3_store", "s3_mnist_slice",
})
# Fixtures that build container images (tests/fixtures_images.py: minutes when cold): `slow` too.
_IMAGE_FIXTURES = frozenset({"python_standin", "serving_image", "kubeflow_image"})


def pytest_collection_modifyitems(items):
  for item in items:
    fixtures = getattr(item, "fixturenames", ())
    if _HEAVY_FIXTURES.intersection(fixtures) or _IMAGE_FIXTURES.intersection(fixtures):
      item.add_marker(pytest.mark.integration)
    if _IMAGE_FIXTURES.intersection(fixtures):
      item.add_marker(pytest.mark.slow)
