"""Templates: text + HTML for every message, escaping, one-line subjects, operator overrides."""

from __future__ import annotations

import dataclasses

import pytest

from qjm_jupyter_server.domain import StatusEvent
from qjm_jupyter_server.notify.messages import MessageFactory
from qjm_jupyter_server.tokens import hash_token
from qjm_jupyter_server.notify.mime import build_message
from qjm_jupyter_server.notify.render import BUILTIN_DIR
from qjm_jupyter_server.settings import Settings

from .conftest import T0, a_job, a_user

HOSTILE = '<img src=x onerror="alert(1)">\r\nBcc: victim@example.org'


@pytest.fixture
def factory() -> MessageFactory:
    # A Hub user's JupyterLab: links deep-link into the Lab panel.
    return MessageFactory(Settings(public_url="https://hub.example.org/user/ada/"), has_lab=lambda: True)


def every_message(f: MessageFactory) -> list:
    u, j = a_user(), a_job()
    return [
        f.verify_email(u, "tok-1", "new@example.org", T0),
        f.reset_password(u, "tok-2", T0),
        f.account_notice(u, "Password changed", "Your password was changed.", T0),
        f.job_status(u, j, ["RUNNING", "DONE"], T0),
        f.group_milestone(u, "sweep", [j, a_job(id="j_2", status="ERROR")], "all_final", T0),
        f.group_milestone(u, "sweep", [j], "first_running", T0),
        f.key_invalid(u, T0),
        f.instance_forbidden(u, "crn:v1:x", T0),
        f.job_lost(u, j, T0),
        f.test_message(u, T0),
    ]


def test_every_message_has_text_html_and_a_dedupe_key(factory):
    msgs = every_message(factory)
    assert len({m.dedupe_key for m in msgs}) == len(msgs)
    for m in msgs:
        assert m.id.startswith("n_") and m.subject.startswith("[qjm] ")
        assert m.text.strip() and m.html.lstrip().startswith("<!DOCTYPE html>")
        assert "https://hub.example.org/user/ada/lab?qjm-" in m.text  # manage link
        assert "\n" not in m.subject and "\r" not in m.subject
        assert m.to_addr == ("new@example.org" if m.kind == "verify" else "ada@example.org")


def test_dedupe_keys_are_deterministic(factory):
    u, j = a_user(), a_job()
    assert factory.job_status(u, j, ["RUNNING", "DONE"], T0).dedupe_key == "job:j_1:RUNNING+DONE"
    assert factory.job_status(u, j, ["DONE"], T0 + 5).dedupe_key == factory.job_status(u, j, ["DONE"], T0).dedupe_key
    assert factory.group_milestone(u, "g", [j], "all_final", T0).dedupe_key == "group:u_ada:g:all_final"
    assert factory.key_invalid(dataclasses.replace(u, ibm_key_updated_at=7), T0).dedupe_key == "keyinvalid:u_ada:7"
    assert factory.instance_forbidden(u, "crn:1", T0).dedupe_key == "forbidden:u_ada:crn:1"
    assert factory.job_lost(u, j, T0).dedupe_key == "lost:j_1"
    assert factory.verify_email(u, "abc", "x@y.z", T0).dedupe_key == f"verify:{hash_token('abc')}"
    assert "abc" not in factory.verify_email(u, "abc", "x@y.z", T0).dedupe_key
    assert factory.reset_password(u, "abc", T0).dedupe_key == f"reset:{hash_token('abc')}"
    assert factory.test_message(u, T0).dedupe_key == f"test:u_ada:{T0}"


def test_job_status_content(factory):
    n = factory.job_status(a_user(), a_job(), ["DONE"], T0)
    assert n.subject == "[qjm] DONE · bell state · ibm_fez"
    assert n.kind == "job_status" and n.job_id == "j_1"
    for part in (n.text, n.html):
        assert "d5abc123" in part and "bell state" in part and "ibm_fez" in part
        assert "crn:v1:bluemix:public:quantum-computing:us-east:a/1:2::" in part
        assert "2026-01-01 00:02:05 UTC" in part  # RUNNING in the timeline
        assert "2 min 05 s" in part  # queued: QUEUED -> RUNNING
        assert "1 h 02 min" in part  # ran: RUNNING -> DONE (3723 s)
        assert "https://quantum.cloud.ibm.com/workloads/d5abc123" in part
        assert "https://hub.example.org/user/ada/lab?qjm-job=j_1" in part


def test_error_reason_and_unknown_spans(factory):
    job = a_job(status="ERROR", error_reason="Error 1305: circuit too deep", history=[StatusEvent("QUEUED", T0), StatusEvent("ERROR", T0 + 1000, "x")])
    n = factory.job_status(a_user(), job, ["ERROR"], T0)
    assert "Error 1305: circuit too deep" in n.text and "Error 1305: circuit too deep" in n.html
    assert "Ran:      —" in n.text


def test_local_job_has_no_ibm_link(factory):
    n = factory.job_status(a_user(), a_job(source="local", channel="local", backend=None, instance=None), ["DONE"], T0)
    assert "quantum.cloud.ibm.com" not in n.text and "local simulator" in n.subject
    assert "unknown backend" not in n.text and "IBM Quantum job" not in n.text


# -- every template, rendering real jobs with full histories: every figure checked ------------
S = 1000
IBM_DONE = a_job(
    created=T0 - 20 * S,  # IBM's creation time: 20 s before we registered it
    started=T0 + 95 * S,  # IBM's metrics: running at 01:35 ...
    finished=T0 + 143 * S,  # ... finished 48 s later
    usage_seconds=3.5,
    history=[StatusEvent("QUEUED", T0 + 2 * S), StatusEvent("RUNNING", T0 + 120 * S), StatusEvent("DONE", T0 + 180 * S)],
)


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_job_status_done_from_ibm_figures(factory):
    n = factory.job_status(a_user(), IBM_DONE, ["DONE"], T0 + 180 * S)
    body = lines(n.text)
    assert "Your IBM Quantum job bell state is now DONE." in body
    for expected in (
        "Job:      d5abc123", "Label:    bell state", "Backend:  ibm_fez",
        "Instance: crn:v1:bluemix:public:quantum-computing:us-east:a/1:2::", "Status:   DONE",
        "Queued:   1 min 55 s",  # IBM created (T0-20 s) -> IBM running (T0+95 s)
        "Ran:      48 s  (IBM Quantum's timestamps)",  # IBM running -> IBM finished
        "Usage:    3.5 s of quantum time",
        "  2026-01-01 00:00:02 UTC  QUEUED", "  2026-01-01 00:02:00 UTC  RUNNING", "  2026-01-01 00:03:00 UTC  DONE",
    ):
        assert expected in body, expected
    for cell in ("<td>1 min 55 s</td>", "<td>48 s</td>", "<td>3.5 s of quantum time</td>", "<td>ibm_fez</td>"):
        assert cell in n.html, cell
    assert n.html.count("<li>") == 3


def test_job_status_running_from_observations(factory):
    job = a_job(status="RUNNING", history=[StatusEvent("QUEUED", T0 + 1 * S), StatusEvent("RUNNING", T0 + 3723 * S)])
    n = factory.job_status(a_user(), job, ["RUNNING"], T0 + 3723 * S)
    body = lines(n.text)
    assert "Queued:   1 h 02 min" in body and "Ran:      —" in body
    assert not any(line.startswith("Usage:") for line in body)
    assert "  2026-01-01 01:02:03 UTC  RUNNING" in body and n.subject == "[qjm] RUNNING · bell state · ibm_fez"


def test_job_status_error_and_cancelled(factory):
    err = a_job(status="ERROR", error_reason="Error in transpilation.",
                history=[StatusEvent("QUEUED", T0), StatusEvent("RUNNING", T0 + 5 * S), StatusEvent("ERROR", T0 + 65 * S, "Error in transpilation.")])
    body = lines(factory.job_status(a_user(), err, ["ERROR"], T0).text)
    assert "Reason:   Error in transpilation." in body and "Ran:      1 min 00 s" in body and "Queued:   5 s" in body
    assert "  1970-01-01" not in "\n".join(body) and "  2026-01-01 00:01:05 UTC  ERROR  (Error in transpilation.)" in body
    cancelled = a_job(status="CANCELLED", history=[StatusEvent("QUEUED", T0), StatusEvent("CANCELLED", T0 + 30 * S)])
    body = lines(factory.job_status(a_user(), cancelled, ["CANCELLED"], T0).text)
    assert "Queued:   —" in body and "Ran:      —" in body  # it never ran


def test_job_status_local_simulator(factory):
    job = a_job(source="local", channel="local", backend="aer_simulator", instance=None, ibm_job_id="c0ffee",
                history=[StatusEvent("RUNNING", T0 + 1 * S), StatusEvent("DONE", T0 + 8 * S)])
    n = factory.job_status(a_user(), job, ["DONE"], T0)
    body = lines(n.text)
    assert "Your local simulator job bell state is now DONE." in body
    assert "Backend:  aer_simulator" in body and "Ran:      7 s" in body and "Queued:   1 s" in body
    assert not any(line.startswith(("Instance:", "Usage:", "On IBM Quantum")) for line in body)
    assert "Your local simulator job" in n.html and "Instance" not in n.html


def test_group_milestone_figures(factory):
    other = a_job(id="j_2", ibm_job_id="d5def", label=None, status="ERROR", error_reason="boom",
                  history=[StatusEvent("QUEUED", T0), StatusEvent("RUNNING", T0 + 10 * S), StatusEvent("ERROR", T0 + 70 * S)])
    n = factory.group_milestone(a_user(), "sweep", [IBM_DONE, other], "all_final", T0)
    body = lines(n.text)
    assert n.subject == "[qjm] group sweep: all 2 jobs finished (1 DONE, 1 ERROR)"
    assert "  DONE: 1" in body and "  ERROR: 1" in body
    assert "- bell state [DONE] on ibm_fez; queued 1 min 55 s, ran 48 s" in body
    assert "- d5def [ERROR] on ibm_fez; queued 10 s, ran 1 min 00 s; boom" in body
    assert "<td>1 min 55 s</td>" in n.html and "<td>1 min 00 s</td>" in n.html


def test_job_lost_figures(factory):
    job = a_job(status="QUEUED", history=[StatusEvent("QUEUED", T0 + 4 * S)])
    body = lines(factory.job_lost(a_user(), job, T0).text)
    assert "Status:   QUEUED" in body and "  2026-01-01 00:00:04 UTC  QUEUED" in body and "Queued:   —" in body


def test_user_text_is_escaped_in_html_and_flattened_in_subject(factory):
    job = a_job(label=HOSTILE, error_reason="<b>boom</b> & co", group="<i>g</i>")
    n = factory.job_status(a_user(), job, ["ERROR"], T0)
    assert "\r" not in n.subject and "\n" not in n.subject
    assert "<img" not in n.html and "&lt;img src=x" in n.html
    assert "<b>boom</b>" not in n.html and "&lt;b&gt;boom&lt;/b&gt; &amp; co" in n.html
    assert "<i>g</i>" not in n.html
    assert "<b>boom</b> & co" in n.text  # plain text stays as written
    msg = build_message(n, "qjm <qjm@example.org>", T0)
    assert msg.get_all("Bcc") is None
    assert "victim@example.org" not in str(msg["To"])
    group = factory.group_milestone(a_user(), HOSTILE, [job], "all_final", T0)
    assert "\n" not in group.subject and "<img" not in group.html


def test_account_notice_escapes_body(factory):
    n = factory.account_notice(a_user(), "Email\r\nchanged", "<script>x</script>", T0)
    assert n.subject == "[qjm] Email changed"
    assert "<script>x" not in n.html and "<script>x</script>" in n.text


def test_links_for_verify_and_reset(factory):
    v = factory.verify_email(a_user(), "Tok_en-1", "new@example.org", T0)
    r = factory.reset_password(a_user(), "Tok_en-2", T0)
    assert "https://hub.example.org/user/ada/qjm/verify?token=Tok_en-1" in v.text
    assert 'href="https://hub.example.org/user/ada/qjm/verify?token=Tok_en-1"' in v.html
    assert "https://hub.example.org/user/ada/qjm/reset?token=Tok_en-2" in r.text


def test_operator_templates_override_builtin_ones(tmp_path):
    (tmp_path / "test_message.txt.j2").write_text("Hello from ACME ops, {{ user_email }}.\n")
    (tmp_path / "_base.html.j2").write_text("<html><body>ACME {% block body %}{% endblock %}</body></html>")
    f = MessageFactory(Settings(templates_dir=str(tmp_path)))
    n = f.test_message(a_user(email="a&b@example.org"), T0)
    assert n.text == "Hello from ACME ops, a&b@example.org.\n"
    assert n.html.startswith("<html><body>ACME") and "a&amp;b@example.org" in n.html  # autoescape still on
    other = f.reset_password(a_user(), "t", T0)  # not overridden: the built-in text
    assert "Choose a new password" in other.text


def test_builtin_templates_are_complete():
    names = {p.name for p in BUILTIN_DIR.iterdir()}
    for kind in ("job_status", "group_milestone", "key_invalid", "instance_forbidden", "job_lost",
                 "verify_email", "reset_password", "account_notice", "test_message"):
        assert f"{kind}.txt.j2" in names and f"{kind}.html.j2" in names


def test_account_links_survive_a_raw_mail_dump(factory):
    """Verification and reset mails are plain ASCII sent 7bit: the link reads the same in a
    debugging SMTP server's output as in a mail client (quoted-printable would show token=3D…)."""
    user = a_user()
    for row in (factory.verify_email(user, "tok-EN_123", user.email, T0), factory.reset_password(user, "tok-EN_456", T0)):
        part = build_message(row, "qjm <qjm@example.org>", T0).get_body(("plain",))
        assert part["Content-Transfer-Encoding"] == "7bit"
        assert "?token=tok-EN_" in part.as_string()


def test_non_ascii_text_is_still_encoded(factory):
    job = dataclasses.replace(a_job(), label="Grover · ünïcode")
    part = build_message(factory.job_status(a_user(), job, ["DONE"], T0), "qjm <qjm@example.org>", T0).get_body(("plain",))
    assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert "ünïcode" in part.get_content()
