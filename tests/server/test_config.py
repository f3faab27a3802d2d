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


# -- one declaration per setting (settings.py) ------------------------------------------------------


def test_every_setting_is_a_documented_trait_with_the_same_default() -> None:
    import dataclasses

    from qjm_jupyter_server.app import QJMServerApp
    from qjm_jupyter_server.settings import Settings

    traits = QJMServerApp.class_traits(config=True)
    help_text = QJMServerApp.class_get_help()
    for f in dataclasses.fields(Settings):
        trait = traits.get(f.name)
        assert trait is not None, f"Settings.{f.name} is not c.QJMServerApp.{f.name}"
        assert f"QJM_{f.name.upper()}" in trait.help, f.name
        assert f"QJMServerApp.{f.name}" in help_text
        default = trait.default()
        assert (tuple(default) if isinstance(default, list) else default) == f.default, f.name
    # and the app declares no setting of its own beside them (store_class is a class, not a setting)
    own = {name for name in traits if name in QJMServerApp.__dict__}
    assert own <= {"store_class"}, own


def test_environment_fills_each_kind_of_setting(tmp_path, monkeypatch) -> None:
    from qjm_jupyter_server.app import QJMServerApp

    for name, value in {
        "QJM_MAIL_FROM": "Group <g@example.org>",  # str
        "QJM_SMTP_PORT": "2525",  # int
        "QJM_LEASE_SECONDS": "7.5",  # float
        "QJM_REQUIRE_VERIFIED_EMAIL": "false",  # bool
        "QJM_ADMIN_EMAILS": " A@example.org ,b@example.org,",  # list
        "QJM_IBM_READ_TIMEOUT": "3",  # a setting that used to be hard-wired
        "QJM_PUBLIC_URL": "https://hub.example.org/qjm",
    }.items():
        monkeypatch.setenv(name, value)
    settings = QJMServerApp(data_dir=str(tmp_path)).settings_now()
    assert settings.mail_from == "Group <g@example.org>"
    assert settings.smtp_port == 2525
    assert settings.lease_seconds == pytest.approx(7.5)
    assert settings.require_verified_email is False
    assert settings.admin_emails == ("a@example.org", "b@example.org")
    assert settings.ibm_read_timeout == pytest.approx(3.0)
    assert settings.public_url == "https://hub.example.org/qjm/"
    assert settings.data_dir == str(tmp_path)  # keyword (config) over nothing


def test_config_file_and_command_line_win_over_the_environment(tmp_path, monkeypatch) -> None:
    from traitlets.config import Config

    from qjm_jupyter_server.app import QJMServerApp

    monkeypatch.setenv("QJM_SMTP_PORT", "2525")
    monkeypatch.setenv("QJM_MAIL_RATE_PER_MINUTE", "7")
    config = Config({"QJMServerApp": {"smtp_port": 1025}})
    app = QJMServerApp(config=config)
    app.parse_command_line(["--QJMServerApp.mail_rate_per_minute=9"])
    settings = app.settings_now()
    assert settings.smtp_port == 1025
    assert settings.mail_rate_per_minute == 9


def test_a_bad_environment_value_names_the_setting(monkeypatch) -> None:
    from qjm_jupyter_server.app import QJMServerApp

    monkeypatch.setenv("QJM_SMTP_PORT", "twenty-five")
    with pytest.raises(Exception, match="smtp_port|twenty-five"):
        QJMServerApp().settings_now()


@pytest.fixture
def no_public_url(qjm_config):
    qjm_config.pop("public_url")
    return qjm_config


async def test_links_use_the_bound_server_url_when_public_url_is_unset(
    no_public_url, make_user, api, qjm_services, jp_serverapp
) -> None:
    """The server's URL is known only after the services are built; emails still link to it."""
    user = await make_user()
    r = await api.post("notifications/test", headers=user.headers)
    assert r.status_code == 202, r.text
    note = (await qjm_services.store.list_notifications(user.id, 10, 0))[0]
    assert jp_serverapp.connection_url.startswith("http://")
    # This test server loads no JupyterLab, so "Manage notifications" is the web UI's page.
    assert "jupyterlab" not in jp_serverapp.extension_manager.extension_apps
    assert f"{jp_serverapp.connection_url}qjm/notifications" in note.text
