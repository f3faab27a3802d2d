"""`python -m bench`: run every benchmark, print one table, write bench/results/latest.json.

    python -m bench                 # all of them, default (laptop-sized) parameters
    python -m bench --only api,email
    python -m bench --full          # the issue-sized workloads (10,000 jobs, ...)
    python -m bench --baseline /tmp/main   # also measure the tree in /tmp/main, same run

Each module in BENCHES exposes `run(args) -> dict` (and optionally `add_arguments`).
Every figure is a count or a ratio against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import traceback
from pathlib import Path
from typing import Any

from .common import machine

BENCHES = ["api", "logins", "stores", "watcher", "ibm_http", "email", "channels", "kernel", "soak", "remote"]
EXTRA = ["scale"]  # run only when asked (`--scale` or `--only scale`): it takes long
RESULTS = Path(__file__).resolve().parent / "results"


def flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out.append((prefix, value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(BENCHES))
    parser.add_argument("--full", action="store_true", help="issue-sized workloads (slower)")
    parser.add_argument("--baseline", default="", metavar="DIR",
                        help="a source tree (e.g. `git archive main | tar -x -C DIR`) that the benchmarks "
                             "supporting it (api, watcher, stores, soak, email) also measure, in the same run")
    parser.add_argument("--bench-rounds", type=int, default=1,
                        help="with --baseline: alternating rounds of each tree, best figure kept (stores, watcher)")
    parser.add_argument("--scale", action="store_true",
                        help="the scaling curves (bench/scale.py) instead of the benchmarks; a PNG beside latest.json")
    modules = {}
    for name in BENCHES + EXTRA:
        try:
            modules[name] = importlib.import_module(f"bench.{name}")
        except ImportError as exc:  # a benchmark whose module is missing is reported, not fatal
            modules[name] = exc
            continue
        adder = getattr(modules[name], "add_arguments", None)
        if adder:
            group = parser.add_argument_group(name)
            adder(group)
    args = parser.parse_args(argv)
    selected = [n.strip() for n in args.only.split(",") if n.strip()] or (["scale"] if args.scale else BENCHES)

    report: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": {}}
    failures = 0
    for name in selected:
        module = modules.get(name)
        print(f"== {name} ...", flush=True)
        t0 = time.perf_counter()
        if isinstance(module, Exception) or module is None:
            report["results"][name] = {"error": f"not available: {module}"}
            failures += 1
            continue
        try:
            report["results"][name] = module.run(args)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            traceback.print_exc()
            report["results"][name] = {"error": repr(exc)}
            failures += 1
        report["results"][name]["_seconds"] = round(time.perf_counter() - t0, 1)

    rows: list[tuple[str, Any]] = []
    flatten("", report["results"], rows)
    width = max((len(k) for k, _ in rows), default=10)
    print()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in report["machine"].items()))
    print(f"{'figure'.ljust(width)}  value")
    print(f"{'-' * width}  -----")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    RESULTS.mkdir(exist_ok=True)
    if isinstance(report["results"].get("scale"), dict) and "list" in report["results"]["scale"]:
        from .scale import plot

        png = plot(report["results"]["scale"], RESULTS / "scale.png")
        report["results"]["scale"]["plot"] = str(png) if png else "matplotlib missing: pip install '.[bench]'"
        print(f"plot: {report['results']['scale']['plot']}")
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten to {RESULTS / 'latest.json'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
