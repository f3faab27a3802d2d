"""Helpers every benchmark shares: a server process, latency summaries, machine facts.

Benchmarks print figures and ratios measured in the same run; nothing here asserts a
time, because these machines are small (2 cores) and noisy.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python -m bench` from the repo root, or a bench file directly
    sys.path.insert(0, str(ROOT))


@contextmanager
def qjm_server(prefix: str, extra_args: Sequence[str] = (), code: Path | None = None, **settings: object) -> Iterator[Any]:
    """A `jupyter qjm` process on a fresh data dir with these QJM settings (stopped after).
    With `code`, the server's packages come from that source tree (a baseline such as main
    unpacked) instead of the editable install; `bench.*` still comes from this one."""
    from tests.fixtures.process import QJMProcess, qjm_env

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        d = Path(tmp)
        env = qjm_env(d, **settings)
        paths = [str(code / "server_ext"), str(code)] if code else []
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT), env.get("PYTHONPATH", "")])
        proc = QJMProcess(data_dir=d, env=env, extra_args=[*extra_args, "--ServerApp.log_level=WARN"])
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = max(0, min(len(data) - 1, int(round(q / 100 * len(data) + 0.5)) - 1))
    return data[k]


def summarize_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
    }


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def run_on_tree(module: str, args: Any, tree: Path, timeout: float = 3600) -> dict[str, Any]:
    """`bench.<module>.run(args)` in a subprocess whose `qjm_jupyter_server` is the one in
    `tree` (e.g. main, unpacked): the same benchmark code measures the baseline in the
    same run. Returns the baseline's result dict."""
    import json
    import subprocess

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "server_ext"), str(ROOT), env.get("PYTHONPATH", "")])
    plain = {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None)))}
    plain["baseline"] = ""  # the child measures itself only
    code = (
        "import argparse, json, sys; from bench.%s import run; "
        "r = run(argparse.Namespace(**json.loads(sys.argv[1]))); print('\\n@@' + json.dumps(r, default=str))" % module
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(plain)], env=env, cwd=str(ROOT),
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"baseline run failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.rsplit("\n@@", 1)[1])


def best_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the best round: throughput max, latency min (noise only ever slows)."""
    first = rounds[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = best_of([r[key] for r in rounds if isinstance(r.get(key), dict)])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [r[key] for r in rounds if isinstance(r.get(key), (int, float))]
            higher = key.startswith(("rps", "listings", "ops_per_s", "msgs_per_s", "detected")) or key.endswith("ratio_qjm_vs_bare")
            out[key] = max(values) if higher else min(values)
        else:
            out[key] = value
    return out


def compare(module: str, args: Any, tree: Path, here: Any, rounds: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(this tree, baseline): `rounds` alternating runs of each, best figure of each side,
    since on a shared machine noise only ever slows a run down."""
    mine: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    for _ in range(max(1, rounds)):
        base.append(run_on_tree(module, args, tree))
        mine.append(here())
    return best_of(mine), best_of(base)
