"""Configuration: traitlets first (config files, command line), QJM_* environment second."""

from __future__ import annotations

import pytest


@pytest.fixture
def env_settings(monkeypatch):
    monkeypatch.setenv("QJM_POLL_INTERVAL", "9")  # also set by config below: config wins
    monkeypatch.setenv("QJM_MAIL_FROM", "Lab group <qjm@lab.example>")  # env only: used
    monkeypatch.setenv("QJM_ADMIN_EMAILS", "a@example.org, B@example.org")
    monkeypatch.setenv("QJM_DEFAULT_NOTIFY_STATUS", "completed,failed")


async def test_config_wins_over_environment_which_fills_the_rest(env_settings, qjm_app) -> None:
    settings = qjm_app.services.settings
    assert qjm_app.poll_interval == pytest.approx(0.2)  # from qjm_config (c.QJMServerApp)
    assert settings.poll_interval == pytest.approx(0.2)
    assert settings.mail_from == "Lab group <qjm@lab.example>"
    assert settings.admin_emails == ("a@example.org", "b@example.org")
    assert settings.default_notify_status == ("DONE", "ERROR")  # aliases normalized


def test_bad_smtp_security_is_refused(tmp_path, monkeypatch) -> None:
    from qjm_jupyter_server.app import QJMServerApp

    monkeypatch.setenv("QJM_SMTP_SECURITY", "ssl")
    app = QJMServerApp(data_dir=str(tmp_path), jwt_secret="s" * 40)
    with pytest.raises(ValueError, match="smtp_security"):
        app.build_services()
