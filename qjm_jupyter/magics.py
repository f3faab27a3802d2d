"""The `%qjm_*` magics: log in, watch jobs, see them in a live table.

Loaded by `%load_ext qjm_jupyter`; keeps imports light (no qiskit, no server packages).
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .client import JobManagerClient
from .errors import QJMError
from .jobs import is_job
from .session import SESSION
from .statuses import DEFAULT_NOTIFY_STATUS

MAX_DEPTH = 6


def get_client() -> JobManagerClient:
    """The client the magics share (the kernel's session: see session.py)."""
    return SESSION.client(JobManagerClient)


def set_client(client: JobManagerClient | None) -> None:
    SESSION.set_client(client)


def find_jobs(value: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[Any]:
    """Job objects inside a value (lists, tuples, dicts, sets; bounded depth, cycle-safe)."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > MAX_DEPTH:
        return
    seen.add(id(value))
    if is_job(value):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from find_jobs(item, depth + 1, seen)
    elif isinstance(value, dict):
        for item in value.values():
            yield from find_jobs(item, depth + 1, seen)


def _on(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [s.strip() for s in value.replace(";", ",").split(",") if s.strip()]


SET_ADDRESS = (
    "set one with JobManagerClient().update_user_info(email='you@example.org') or in the qjm panel's Account "
    "section, then follow the link mailed to it"
)


def summary(result: dict[str, Any], email: str | None, confirmed: bool = True) -> str:
    """'watching 3 jobs on ibm_torino; you will get an email at a@b.c on DONE, ERROR, CANCELLED'.

    `email` "" means the account has no address yet (a host identity's account starts
    without one); `confirmed` False: the address waits for its emailed link.
    """
    jobs = result.get("jobs", [])
    n = len(jobs)
    if n == 0:
        return "no jobs to watch"
    backends = sorted({j.get("backend") or ("local" if j.get("source") == "local" else "") for j in jobs} - {""})
    where = ""
    if backends:
        where = " on " + ", ".join(backends[:3]) + (f" and {len(backends) - 3} more" if len(backends) > 3 else "")
    notify: list[str] = []
    for j in jobs:
        for s in j.get("notify_status") or []:
            if s not in notify:
                notify.append(s)
    line = f"watching {n} job{'s' if n != 1 else ''}{where}"
    merged = int(result.get("merged", 0))
    if merged:
        line += f" ({merged} already watched)"
    if notify and email == "":
        line += f"; no email address is set, so no mail will be sent: {SET_ADDRESS}"
    elif notify and not confirmed:
        line += f"; you will get an email at {email} on {', '.join(notify)} once you confirm it (follow the link mailed to it)"
    elif notify:
        line += f"; you will get an email at {email or 'your account address'} on {', '.join(notify)}"
    else:
        line += "; no email (empty notify list)"
    return line


def account_address(client: JobManagerClient) -> tuple[str | None, bool]:
    """(the address mail goes to, whether it is confirmed).

    A password login knows its address. Under the host's identity (personal Jupyter, or
    JupyterHub) the kernel never gave one, so the account is asked; None when it cannot be.
    """
    if client.email:
        return client.email, True
    try:
        me = client.user_info()
    except QJMError:
        return None, True
    return str(me.get("email") or ""), bool(me.get("is_verified"))


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """A magic's expected failures as one short line (UsageError: no traceback), still failing the cell."""
    try:
        yield
    except (QJMError, ValueError) as exc:
        raise UsageError(f"qjm: {exc}") from None


@magics_class
class QJMMagics(Magics):
    """Job notifications from a notebook: `%qjm_login`, `%qjm_watch`, `%qjm_unwatch`, `%qjm_jobs`."""

    def _eval_all(self, exprs: list[str]) -> list[Any]:
        values = []
        for expr in exprs:
            try:
                values.append(self.shell.ev(expr))
            except Exception as exc:
                raise ValueError(f"cannot evaluate {expr!r}: {type(exc).__name__}: {exc}") from None
        return values

    @magic_arguments()
    @argument("email", nargs="?", help="account email (default: $QJM_EMAIL, or asked)")
    @argument("--url", help="server root, e.g. http://127.0.0.1:8888/ (default: $QJM_URL or this Jupyter server)")
    @line_magic
    def qjm_login(self, line: str) -> None:
        """Log in to the qjm server and remember the session for every kernel.

        Usage: `%qjm_login [email] [--url URL]`. The password is asked with getpass
        ($QJM_PASSWORD is used when set, for unattended notebooks). The credentials file
        (`$QJM_CONFIG_DIR` or `~/.config/qjm/credentials.json`, mode 0600) stores a token,
        never the password.
        """
        args = parse_argstring(self.qjm_login, line)
        # No credentials given to the client: it is the kernel's login for its server, the
        # same one a `client = JobManagerClient()` of this notebook uses (session.py).
        client = JobManagerClient(url=args.url) if args.url else get_client()
        email = args.email or os.environ.get("QJM_EMAIL") or client.email
        if not email:
            email = input("qjm email: ").strip()
        password = os.environ.get("QJM_PASSWORD") if email == os.environ.get("QJM_EMAIL") else None
        if not password:
            password = getpass.getpass(f"qjm password for {email}: ")
        with friendly_errors():
            client.login(email, password, save=True)
        set_client(client)
        print(f"logged in to {client.url} as {email}")

    @magic_arguments()
    @argument("exprs", nargs="*", help="expressions giving jobs, job ids or (nested) lists of them")
    @argument("--on", help="statuses to get an email on, comma-separated (default: your account's, e.g. DONE,ERROR,CANCELLED)")
    @argument("--label", help="a label for these jobs (shown in the table and the email)")
    @argument("--group", help="a group name: one summary email when the whole group is done")
    @line_magic
    def qjm_watch(self, line: str) -> None:
        """Watch jobs and get an email when they reach the statuses you choose.

        Usage: `%qjm_watch job [jobs ...] [--on RUNNING,DONE] [--label L] [--group G]`.
        Each argument is evaluated in the notebook namespace: a RuntimeJobV2, an IBM job id
        string, a local Aer/primitive job, or nested lists of those. All jobs go to the
        server in one request. Local jobs are watched by this kernel.
        """
        args = parse_argstring(self.qjm_watch, line)
        if not args.exprs:
            print("nothing to watch: give jobs, e.g. %qjm_watch job  (or use %%qjm_watch on a cell)")
            return None
        with friendly_errors():
            values = self._eval_all(args.exprs)
        self._watch(values[0] if len(values) == 1 else values, args.on, args.label, args.group)

    def _watch(self, jobs: Any, on: str | None, label: str | None, group: str | None) -> dict[str, Any]:
        client = get_client()
        with friendly_errors():
            result = client.register_job(jobs, _on(on), label=label, group=group)
        print(summary(result, *account_address(client)))
        return result

    @magic_arguments()
    @argument("--on", help="statuses to get an email on, comma-separated")
    @argument("--label", help="a label for these jobs")
    @argument("--group", help="a group name for these jobs")
    @cell_magic("qjm_watch")
    def qjm_watch_cell(self, line: str, cell: str) -> None:
        """Run the cell, then watch every job object it created.

        Usage: `%%qjm_watch [--on RUNNING,DONE] [--label L] [--group G]` on top of a cell
        that submits jobs. New or re-assigned variables are searched, including inside
        lists, tuples and dicts.
        """
        args = parse_argstring(self.qjm_watch_cell, line)
        ns = self.shell.user_ns
        before = {id(j) for value in list(ns.values()) for j in find_jobs(value)}
        result = self.shell.run_cell(cell)
        if not result.success:
            print("the cell failed; no jobs were watched")
            return
        found: list[Any] = []
        seen: set[int] = set()
        for name, value in list(ns.items()):
            if name.startswith("_"):
                continue
            for job in find_jobs(value):
                if id(job) not in before and id(job) not in seen:
                    seen.add(id(job))
                    found.append(job)
        if not found:
            print("the cell created no job objects to watch")
            return
        self._watch(found, args.on, args.label, args.group)

    @line_magic
    def qjm_unwatch(self, line: str) -> None:
        """Stop watching jobs: `%qjm_unwatch job [jobs ...]` (job objects, ids or lists).

        Only qjm forgets them; the jobs themselves keep running on IBM Quantum.
        """
        exprs = line.split()
        if not exprs:
            print("usage: %qjm_unwatch job [jobs ...]")
            return
        with friendly_errors():
            n = get_client().delete_job(self._eval_all(exprs))
        print(f"stopped watching {n} job{'s' if n != 1 else ''}")

    @magic_arguments()
    @argument("--refresh", type=float, default=5.0, help="seconds between refreshes (default 5)")
    @line_magic
    def qjm_jobs(self, line: str) -> Any:
        """Show your watched jobs in a live table (status filter, unwatch buttons).

        Usage: `%qjm_jobs [--refresh SECONDS]`. The table refreshes in the background until
        it is closed.
        """
        args = parse_argstring(self.qjm_jobs, line)
        from .widget import JobTable

        table = JobTable(get_client(), refresh=args.refresh)
        SESSION.add_table(table)
        return table


def shutdown() -> None:
    """Stop everything the magics started (`%unload_ext qjm_jupyter`)."""
    SESSION.shutdown()


__all__ = ["QJMMagics", "shutdown", "get_client", "set_client", "find_jobs", "summary", "DEFAULT_NOTIFY_STATUS"]
