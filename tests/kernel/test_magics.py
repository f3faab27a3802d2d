"""The %qjm magics in a REAL kernel (nbclient), against a real server, mail to aiosmtpd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import Account, body_text, wait_for_mail

pytestmark = pytest.mark.timeout(240)


def run_notebook(cells: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cwd: Path) -> list[str]:
    """Execute code cells in a fresh python3 kernel; return each cell's stdout + text/plain."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(c, metadata={"tags": ["raises-exception"]} if "FINISHED" in c else {}) for c in cells
    ])
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = []
    for cell in nb.cells:
        text = ""
        for out in cell.outputs:
            if out.output_type == "stream":
                text += out.text
            elif out.output_type in ("execute_result", "display_data"):
                text += out.data.get("text/plain", "")
            elif out.output_type == "error":
                text += f"{out.ename}: {out.evalue}"
        outputs.append(text)
    return outputs


def client_env(account: Account, config_dir: Path) -> dict[str, str]:
    return {"QJM_URL": account.url, "QJM_EMAIL": account.email, "QJM_PASSWORD": account.password,
            "QJM_CONFIG_DIR": str(config_dir)}


def test_magics_in_a_real_kernel(account: Account, kernel_smtp, config_dir: Path, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = run_notebook([
        "%load_ext qjm_jupyter",
        "%qjm_login",
        "ids = ['mg-2', ['mg-3']]\n%qjm_watch 'mg-1' ids --on RUNNING,DONE --label sweep",
        # a cell that submits local Aer jobs: every job object it creates is watched
        "%%qjm_watch --on DONE --label aer\n"
        "from qiskit import QuantumCircuit\nfrom qiskit_aer import AerSimulator\n"
        "qc = QuantumCircuit(1, 1); qc.h(0); qc.measure(0, 0)\n"
        "sim = AerSimulator()\nruns = {'a': sim.run(qc, shots=16), 'b': [sim.run(qc, shots=16)]}\n"
        "for j in [runs['a'], runs['b'][0]]: j.result()",
        "%qjm_unwatch ids",
        "t = %qjm_jobs --refresh 0\nt.refresh()\nprint(sorted(j['job_id'][:3] for j in t.jobs), t.message.value)",
        "import json\nprint(json.dumps([runs['a'].job_id(), runs['b'][0].job_id()]))",
        "%qjm_watch 'mg-1' --on FINISHED",
        "import time, threading\nfrom qjm_jupyter.session import SESSION\n"
        "deadline = time.monotonic() + 30\n"
        "while SESSION.watcher().running and time.monotonic() < deadline: time.sleep(0.2)\n"
        "%unload_ext qjm_jupyter\n"
        "print(sorted(t.name for t in threading.enumerate() if t.name.startswith('qjm')))",
    ], client_env(account, config_dir), monkeypatch, tmp_path)
    assert out[1].strip() == f"logged in to {account.url} as {account.email}"
    assert out[2].strip() == f"watching 3 jobs; you will get an email at {account.email} on RUNNING, DONE"
    assert out[3].strip() == f"watching 2 jobs on aer_simulator; you will get an email at {account.email} on DONE"
    assert out[4].strip() == "stopped watching 2 jobs"
    assert "'mg-'" in out[5] and out[5].count("mg-") == 1 and "3 jobs" in out[5]
    aer_ids = json.loads(out[6])
    assert out[7].startswith("UsageError: qjm: notify_status: unknown job status 'FINISHED'"), out[7]
    assert out[8].strip() == "[]"  # every qjm thread stopped on unload
    # the kernel reported the local jobs' DONE; the server mailed it
    mails = wait_for_mail(kernel_smtp, lambda m: account.email in str(m["To"]) and any(i in body_text(m) for i in aer_ids))
    assert mails, [m["Subject"] for m in kernel_smtp.messages]
    assert "DONE" in str(mails[0]["Subject"]).upper() or "DONE" in body_text(mails[0]).upper()
    creds = json.loads((config_dir / "credentials.json").read_text())
    assert creds["servers"][account.url]["email"] == account.email and "password" not in json.dumps(creds)


def test_a_primitive_job_is_mailed_as_a_local_job_on_its_backend(account: Account, kernel_smtp, config_dir: Path, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 12, end to end in a real kernel: a primitive job (qiskit's StatevectorSampler)
    is watched by the kernel and mailed as a local simulator job on its primitive, never
    as "Your IBM Quantum job" on "unknown backend"."""
    out = run_notebook([
        "%load_ext qjm_jupyter",
        "from qiskit import QuantumCircuit\nfrom qiskit.primitives import StatevectorSampler\n"
        "qc = QuantumCircuit(1); qc.h(0); qc.measure_all()\n"
        "job = StatevectorSampler().run([qc])\n"
        "%qjm_watch job --on DONE --label prim\n"
        "job.result(); print(job.job_id())",
    ], client_env(account, config_dir), monkeypatch, tmp_path)
    job_id = out[1].strip().splitlines()[-1]
    mails = wait_for_mail(kernel_smtp, lambda m: account.email in str(m["To"]) and job_id in body_text(m))
    assert mails, [m["Subject"] for m in kernel_smtp.messages]
    subject, text = str(mails[0]["Subject"]), body_text(mails[0])
    assert subject == "[qjm] DONE · prim · StatevectorSampler", subject
    assert "Your local simulator job prim is now DONE." in text and "Backend:  StatevectorSampler" in text, text
    assert "IBM Quantum job" not in text and "unknown backend" not in text


def test_cancel_job_from_a_notebook_reaches_the_kernel_that_runs_it(account: Account, kernel_smtp, config_dir: Path, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 12, in a real kernel: `client.cancel_job(job)` on a local Aer job that has not
    started yet goes to the server, the kernel's own watcher picks the request up at its
    check-in, cancels the job and reports CANCELLED, and the CANCELLED mail goes out."""
    out = run_notebook([
        "%load_ext qjm_jupyter",
        # A real Aer job waiting in a busy one-worker executor: not started, so it can be cancelled.
        "import threading\nfrom concurrent.futures import ThreadPoolExecutor\n"
        "from qiskit import QuantumCircuit\nfrom qiskit_aer import AerSimulator\nfrom qiskit_aer.jobs import AerJob\n"
        "gate = threading.Event(); executor = ThreadPoolExecutor(max_workers=1); executor.submit(gate.wait, 120)\n"
        "qc = QuantumCircuit(1); qc.h(0); qc.measure_all(); sim = AerSimulator()\n"
        "job = AerJob(sim, 'aer-nb-cancel', sim._execute_circuits_job, circuits=[qc], parameter_binds=None,\n"
        "             run_options={}, executor=executor)\n"
        "job.submit()\n"
        "%qjm_watch job --on CANCELLED --label stuck",
        "import time\nfrom qjm_jupyter import JobManagerClient\nclient = JobManagerClient()\n"
        "deadline = time.monotonic() + 60\n"
        "while client.job_info(job)['last_poll_at'] is None and time.monotonic() < deadline: time.sleep(0.2)\n"
        "print(client.cancel_job(job)['state'])",
        "deadline = time.monotonic() + 60\n"
        "while client.job_info(job)['status'] != 'CANCELLED' and time.monotonic() < deadline: time.sleep(0.2)\n"
        "print(job.status().name, client.job_info(job)['status'])\n"
        "gate.set(); executor.shutdown(wait=False)",
    ], client_env(account, config_dir), monkeypatch, tmp_path)
    assert out[2].strip() == "requested", out
    assert out[3].strip() == "CANCELLED CANCELLED", out
    mails = wait_for_mail(kernel_smtp, lambda m: account.email in str(m["To"]) and "CANCELLED · stuck" in str(m["Subject"]))
    assert len(mails) == 1, [m["Subject"] for m in kernel_smtp.messages]


def test_load_ext_stays_light() -> None:
    """`%load_ext qjm_jupyter` imports no qiskit, tornado or jupyter_server (in a fresh interpreter)."""
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "before = set(sys.modules)\n"
        "ip.run_line_magic('load_ext', 'qjm_jupyter')\n"
        "assert 'qjm_watch' in ip.magics_manager.magics['line']\n"
        "heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('qiskit', 'qiskit_ibm_runtime', 'qiskit_aer', 'tornado', 'jupyter_server', 'qjm_jupyter_server', 'ipywidgets'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
