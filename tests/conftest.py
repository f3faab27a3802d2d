"""Shared test wiring. Fixture modules live in tests/fixtures/, one concern each."""

pytest_plugins = [
    "tests.fixtures.ibm",
    "tests.fixtures.server",
    "tests.fixtures.process",
    "tests.fixtures.smtp",
    "tests.fixtures.mongo",
]
