"""Fixtures shared by the tests beside every package."""

pytest_plugins = ["tests.fixtures_data", "tests.fixtures_model"]
