"""Kernel side: the cost of `%load_ext qjm_jupyter`, and `%qjm_watch` of 1 and 1,000 jobs.

    python -m bench.kernel [--repeat 5]

Import cost is measured in fresh interpreters (subprocesses) against `import json` in the
same interpreter, so the ratio means something on any machine. `%qjm_watch` runs the
real magic in an IPython shell against a started `jupyter qjm` and counts the HTTP
requests the client made (one request for N jobs is the goal).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT

IMPORT_PROBE = r"""
import time, sys
t0 = time.perf_counter(); import json; t_json = time.perf_counter() - t0
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
before = set(sys.modules)
t0 = time.perf_counter(); ip.run_line_magic("load_ext", "qjm_jupyter"); t_ext = time.perf_counter() - t0
heavy = [m for m in set(sys.modules) - before if m.split(".")[0] in ("qiskit", "tornado", "jupyter_server")]
print(json.dumps({"json_s": t_json, "load_ext_s": t_ext, "new_modules": len(set(sys.modules) - before), "heavy": heavy}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters for the import probe")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in the large %%qjm_watch")


def import_cost(repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, timeout=120, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    json_ms = statistics.median(r["json_s"] for r in runs) * 1000
    ext_ms = statistics.median(r["load_ext_s"] for r in runs) * 1000
    return {
        "repeat": repeat,
        "import_json_median_ms": round(json_ms, 3),
        "load_ext_median_ms": round(ext_ms, 2),
        "load_ext_over_import_json": round(ext_ms / json_ms, 1) if json_ms else None,
        "modules_added_by_load_ext": runs[-1]["new_modules"],
        "heavy_modules_imported": sorted({m for r in runs for m in r["heavy"]}),
    }


def watch_cost(url: str, n_jobs: int) -> dict[str, Any]:
    import httpx
    from IPython.core.interactiveshell import InteractiveShell

    from qjm_jupyter import magics
    from qjm_jupyter.client import JobManagerClient

    email, password = f"bench-{secrets.token_hex(4)}@example.org", "bench password 123"
    crn = "crn:v1:bluemix:public:quantum-computing:us-east:a/bench:inst::"
    r = httpx.post(url + "qjm/api/auth/register", json={"email": email, "password": password, "default_instance": crn}, timeout=30)
    r.raise_for_status()
    client = JobManagerClient(url=url, email=email, password=password, timeout=60)
    client.login()
    magics.set_client(client)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "qjm_jupyter")
    out: dict[str, Any] = {}
    for label, n in (("watch_1", 1), (f"watch_{n_jobs}", n_jobs)):
        ip.user_ns["bench_ids"] = [f"{label}-{i}" for i in range(n)]
        before = client.requests_made
        t0 = time.perf_counter()
        ip.run_line_magic("qjm_watch", "bench_ids")
        wall = time.perf_counter() - t0
        out[label] = {"jobs": n, "wall_ms": round(wall * 1000, 1), "http_requests": client.requests_made - before}
    out["registered_total"] = len(client.all_job_info())
    magics.shutdown()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.fixtures.process import QJMProcess, qjm_env

    result: dict[str, Any] = {"import": import_cost(getattr(args, "repeat", 5))}
    with tempfile.TemporaryDirectory(prefix="qjm-bench-kernel-") as tmp:
        d = Path(tmp)
        env = qjm_env(d)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        proc = QJMProcess(data_dir=d, env=env, extra_args=["--ServerApp.log_level=WARN"])
        proc.start()
        old = os.environ.get("QJM_CONFIG_DIR")
        os.environ["QJM_CONFIG_DIR"] = str(d / "client-config")  # never touch the user's credentials file
        try:
            result["watch"] = watch_cost(proc.url, getattr(args, "jobs", 1000))
        finally:
            if old is None:
                os.environ.pop("QJM_CONFIG_DIR", None)
            else:
                os.environ["QJM_CONFIG_DIR"] = old
            proc.stop()
    return result


if __name__ == "__main__":  # `python -m bench.kernel`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "kernel", *sys.argv[1:]]))
