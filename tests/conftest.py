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
    "tests.fixtures.receiver",
    "tests.fixtures.hub",
]

# CI sets QJM_REQUIRE_MONGO=1 / QJM_REQUIRE_UI=1: there the MongoDB leg and the browser test
# must run, so a skip of either fails the session instead of passing quietly.
_REQUIRED = {"mongo": "QJM_REQUIRE_MONGO", "ui": "QJM_REQUIRE_UI", "hub": "QJM_REQUIRE_HUB"}
_required_skips: list[str] = []


def _note_required_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    import os

    if not report.skipped:
        return
    for marker, env in _REQUIRED.items():
        in_scope = marker in getattr(report, "keywords", {}) or f"/{marker}/" in report.nodeid
        if in_scope and os.environ.get(env) == "1":
            _required_skips.append(f"{report.nodeid} ({env}=1)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note_required_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note_required_skip(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _required_skips:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("required tests were skipped: " + "; ".join(_required_skips), red=True)
