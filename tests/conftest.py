"""Shared test wiring. Fixture modules live in tests/fixtures/, one concern each."""

import pytest

# Fixture modules import each other; register them for assertion rewriting before any import.
pytest.register_assert_rewrite("tests.fixtures", "tests.fakes")

pytest_plugins = [
    "tests.fixtures.ibm",
    "tests.fixtures.server",
    "tests.fixtures.process",
    "tests.fixtures.smtp",
    "tests.fixtures.mongo",
]
