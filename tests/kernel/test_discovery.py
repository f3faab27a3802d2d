"""A kernel started by a Jupyter server finds that server without a URL."""

from __future__ import annotations

import json

from qjm_jupyter.client import JobManagerClient
from qjm_jupyter.discovery import parent_server_url


def _isolate(monkeypatch, tmp_path) -> None:
    for var in ("QJM_URL", "QJM_EMAIL", "QJM_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QJM_CONFIG_DIR", str(tmp_path / "cfg"))  # no saved credentials
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))


def test_client_uses_the_server_that_launched_the_kernel(monkeypatch, tmp_path) -> None:
    _isolate(monkeypatch, tmp_path)
    (tmp_path / "runtime").mkdir()
    info = {"url": "http://127.0.0.1:18123/lab-base/", "pid": 4242, "token": "secret"}
    (tmp_path / "runtime" / "jpserver-4242.json").write_text(json.dumps(info))
    monkeypatch.setenv("JPY_PARENT_PID", "4242")
    assert parent_server_url() == "http://127.0.0.1:18123/lab-base/"
    client = JobManagerClient()
    try:
        assert client.url == "http://127.0.0.1:18123/lab-base/"
    finally:
        client.close()


def test_explicit_url_and_env_win_over_discovery(monkeypatch, tmp_path) -> None:
    _isolate(monkeypatch, tmp_path)
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "jpserver-4242.json").write_text(json.dumps({"url": "http://127.0.0.1:18123/"}))
    monkeypatch.setenv("JPY_PARENT_PID", "4242")
    monkeypatch.setenv("QJM_URL", "http://group.example:8890/")
    client = JobManagerClient()
    try:
        assert client.url == "http://group.example:8890/"
    finally:
        client.close()


def test_no_parent_server(monkeypatch, tmp_path) -> None:
    _isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("JPY_PARENT_PID", "999999")  # no such info file
    assert parent_server_url() is None
    monkeypatch.delenv("JPY_PARENT_PID")
    assert parent_server_url() is None


def test_host_credentials_go_only_to_the_parent_server_or_a_hub_service(monkeypatch) -> None:
    from qjm_jupyter.client import host_token

    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    assert host_token("http://127.0.0.1:18123/", "http://127.0.0.1:18123/", "jp-token") == "jp-token"
    assert host_token("http://group.example.org/", "http://127.0.0.1:18123/", "jp-token") is None
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token")
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/hub-base/")
    assert host_token("http://127.0.0.1:8000/hub-base/services/qjm/", None, None) == "hub-token"
    assert host_token("http://127.0.0.1:8000/services/qjm/", None, None) is None  # not under the Hub's base
    assert host_token("http://group.example.org/qjm/", None, None) is None
