"""Personal mode end to end: `jupyter lab`, an address confirmed by link, `%qjm_watch` with no
password in a real kernel (nbclient), and the mail at aiosmtpd.

The kernel gets what jupyter_client's launcher gives every kernel of a server
(`JPY_PARENT_PID`, the inherited runtime dir); it finds the server's runtime file and
authenticates with the token in it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.fixtures.process import qjm_env

from tests.fixtures.server_kernel import run_in_server_kernel

from .conftest import body_text, wait_for_mail

pytestmark = pytest.mark.timeout(300)


def test_watch_with_no_password_leads_to_a_mail(start_qjm, kernel_smtp, config_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "lab"
    data.mkdir()
    env = qjm_env(data, smtp_host=kernel_smtp.host, smtp_port=kernel_smtp.port, smtp_security="none",
                  public_url="http://qjm.test/", poll_interval=0.3)
    env["QJM_CONFIG_DIR"] = str(config_dir)  # kernels inherit it: an empty credentials dir
    lab = start_qjm(command="lab", data_dir=data, env=env)
    token = {"Authorization": f"token {lab.jupyter_token}"}
    assert httpx.get(lab.api + "status", timeout=20).json()["identity_source"] == "jupyter"

    # before any address: %qjm_watch says so, and how to give one (which works from the kernel)
    email = "owner-personal@example.org"
    early = run_in_server_kernel(lab, [
        "%load_ext qjm_jupyter",
        "from qiskit import QuantumCircuit\nfrom qiskit_aer import AerSimulator\n"
        "qc = QuantumCircuit(1, 1); qc.h(0); qc.measure(0, 0)\nfirst = AerSimulator().run(qc, shots=8); first.result()\n"
        "%qjm_watch first --on DONE",
        "print(first.job_id())",
        f"from qjm_jupyter import JobManagerClient\nJobManagerClient().update_user_info(email={email!r}); print('set')",
    ])
    assert "no email address" in early[1] and "update_user_info(email=" in early[1], early
    assert "your address" not in early[1], early
    first_id = early[2].strip()
    assert early[3].strip() == "set", early

    # the only set-up: an address, confirmed by the emailed link
    mails = wait_for_mail(kernel_smtp, lambda m: email in str(m["To"]) and "token=" in body_text(m))
    assert mails, [m["Subject"] for m in kernel_smtp.messages]
    link_token = unquote(re.search(r"token=([A-Za-z0-9_\-.%]+)", body_text(mails[-1])).group(1))  # type: ignore[union-attr]
    r = httpx.post(lab.api + "auth/verify/confirm", json={"token": link_token}, timeout=20)
    assert r.status_code == 200, r.text

    # a kernel this server started: no URL, no email, no password, no credentials file
    out = run_in_server_kernel(lab, [
        "%load_ext qjm_jupyter",
        "%%qjm_watch --on DONE --label personal\n"
        "from qiskit import QuantumCircuit\nfrom qiskit_aer import AerSimulator\n"
        "qc = QuantumCircuit(1, 1); qc.h(0); qc.measure(0, 0)\n"
        "job = AerSimulator().run(qc, shots=16); job.result()",
        "print(job.job_id())",
        "from qjm_jupyter import JobManagerClient\nprint(JobManagerClient().user_info()['email'])",
    ])
    assert "watching 1 job on aer_simulator" in out[1], out
    assert f"you will get an email at {email} on DONE" in out[1], out  # the address, not "your address"
    job_id = out[2].strip()
    assert out[3].strip() == email
    mails = wait_for_mail(kernel_smtp, lambda m: email in str(m["To"]) and job_id in body_text(m))
    assert mails, [m["Subject"] for m in kernel_smtp.messages]
    assert not (config_dir / "credentials.json").exists()  # nothing was logged in or saved
    # the job belongs to the Jupyter user's account
    jobs = httpx.get(lab.api + "jobs", headers=token, timeout=20).json()["jobs"]
    assert sorted(j["job_id"] for j in jobs) == sorted([job_id, first_id])
    info = json.loads(next((data / "runtime").glob("jpserver-*.json")).read_text())
    assert info["token"] == lab.jupyter_token
