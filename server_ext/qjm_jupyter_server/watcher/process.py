"""The watcher in a process of its own, so a group server's requests never wait behind it.

Why: a poll cycle's work grows with the jobs pending at IBM. IBM's job listing has no
"changed since" filter, so every cycle decodes and compares every pending job of every
(user, instance) it polls. In the API's process that work shares one event loop and one
GIL with the requests. In the soak benchmark (`python -m bench --only soak`) the requests'
p99 per minute grew 3.5x in 4 minutes as pending jobs piled up, every kind of request
alike; with the watcher in its own process it stayed flat.

So `jupyter qjm` (setting `watcher`, default "process" there) starts
`python -m qjm_jupyter_server.watcher.process` and supervises it:

- The child reads the server's resolved settings as one JSON line on stdin: config files,
  the command line and QJM_* variables are already applied, and no secret appears on a
  command line.
- The pipe then stays open. End of file means the parent is gone, stopped or killed, and
  the child stops too, handing its leases back. SIGINT is ignored: the parent decides.
- A child that exits on its own is started again after a pause of 1 s, doubling up to
  60 s, back to 1 s once a child has run for a minute.
- Both processes share the store as several servers do (watcher/poller.py): leases decide
  who polls a unit, and outbox claims and dedupe keys keep each notification to one
  delivery, though both processes run a mailer. The server's mailer sends at once what its
  requests queue (verification mail, say); the child's sends what the watcher queues.

`jupyter qjm watch` (cli.py) runs the same `serve` under an operator's own supervisor
instead, with `watcher = "external"` on the server: on another host of a MongoDB
deployment, for instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from ..services import Services, open_services
from ..settings import Settings
from ..store import Store
from .poller import ActiveJobCount

log = logging.getLogger("qjm.watcher")

RESTART_MIN = 1.0  # seconds before a child that died is started again ...
RESTART_MAX = 60.0  # ... doubling up to this
STABLE_AFTER = 60.0  # a child that ran this long starts the next backoff from RESTART_MIN
STOP_TIMEOUT = 15.0  # seconds a child gets to hand its leases back before it is killed


@dataclass(frozen=True)
class WorkerSpec:
    """All the child needs, sent as one JSON line: no configuration is read twice."""

    settings: dict[str, Any]  # Settings with data_dir and db_url resolved
    store_class: str  # "module:qualname" of a configured store class, "" for open_store(db_url)
    links_base: str  # where links in emails point (the server's public URL, once it is bound)
    has_lab: bool  # whether those links may open JupyterLab
    log_level: int

    @classmethod
    def of(cls, settings: Settings, store_class: type | None, links_base: str, has_lab: bool, log_level: int) -> WorkerSpec:
        return cls(
            settings=dataclasses.asdict(dataclasses.replace(settings, watcher="inline")),  # the child is the watcher
            store_class=f"{store_class.__module__}:{store_class.__qualname__}" if store_class else "",
            links_base=links_base, has_lab=has_lab, log_level=log_level,
        )

    def to_line(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> WorkerSpec:
        return cls(**json.loads(line))

    def services(self) -> Services:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.settings.items()}
        store_class = None
        if self.store_class:
            module, _, name = self.store_class.partition(":")
            store_class = importlib.import_module(module)
            for part in name.split("."):
                store_class = getattr(store_class, part)
        return open_services(Settings(**values), store_class=store_class,  # type: ignore[arg-type]
                             public_url=lambda: self.links_base, has_lab=lambda: self.has_lab, log=log)


async def serve(services: Services, stop: asyncio.Event) -> None:
    """Poll and mail until `stop` is set, then hand the leases back and close the store."""
    try:
        await services.start_background()
        log.info("qjm: watcher and mailer running (poll every %ss)", services.settings.poll_interval)
        await stop.wait()
    finally:
        await services.close()
        log.info("qjm: watcher stopped")


# -- the child -----------------------------------------------------------------------------
def main() -> int:
    """`python -m qjm_jupyter_server.watcher.process`, started by WatcherProcess."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal: the server decides
    return asyncio.run(_child())


async def _child() -> int:
    """Read the spec, then watch until SIGTERM or the pipe's end. The pipe is read by the
    event loop: a thread blocked in reading stdin made interpreter shutdown abort (SIGTERM
    from a service manager stopping the whole process group)."""
    loop = asyncio.get_running_loop()
    pipe = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(pipe), sys.stdin)
    line = await pipe.readline()
    if not line.endswith(b"\n"):
        return 2  # no spec: the parent died before sending it
    spec = WorkerSpec.from_line(line)
    logging.basicConfig(level=spec.log_level, stream=sys.stderr,
                        format="[qjm watcher %(process)d %(asctime)s %(levelname)s] %(message)s")
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # Windows: the pipe's end alone stops it
        loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def await_end_of_file() -> None:
        while await pipe.read(4096):
            pass
        stop.set()

    eof = asyncio.create_task(await_end_of_file(), name="qjm-parent-pipe")
    try:
        await serve(spec.services(), stop)
    finally:
        eof.cancel()
    return 0


# -- the parent ----------------------------------------------------------------------------
class WatcherProcess:
    """The server's side: starts the child, starts it again if it dies, stops it with the server.

    Stands in for the poller in `Services.watcher`: `running` and `has_work()` answer for
    the status endpoint and for Jupyter's idle culling."""

    def __init__(self, spec: WorkerSpec, store: Store) -> None:
        self.spec, self.store = spec, store
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.active = ActiveJobCount(store)
        self._counting: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def has_work(self) -> bool:
        """Jobs are being watched: a count taken on demand when the last one is stale."""
        if self.active.stale and (self._counting is None or self._counting.done()):
            with contextlib.suppress(RuntimeError):  # no running loop: answer from the last count
                self._counting = asyncio.get_running_loop().create_task(self.active.refresh())
        return self.active.value > 0

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._supervise(), name="qjm-watcher-process")

    async def stop(self) -> None:
        """End of file on the child's stdin, then SIGKILL if it has not ended in STOP_TIMEOUT."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("qjm: the watcher process %d did not stop in %.0f s; killing it", proc.pid, STOP_TIMEOUT)
                proc.kill()
                await proc.wait()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _supervise(self) -> None:
        delay = RESTART_MIN
        while not self._stopping:
            started = time.monotonic()
            code = await self._run_once()
            if self._stopping:
                return
            if time.monotonic() - started >= STABLE_AFTER:
                delay = RESTART_MIN
            log.error("qjm: the watcher process exited (%s); starting it again in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)

    async def _run_once(self) -> int | str:
        """One child, from start to exit; its exit status, or why it could not start."""
        try:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", __name__, stdin=asyncio.subprocess.PIPE)
        except OSError as exc:
            return f"could not start: {exc}"
        self._proc = proc
        assert proc.stdin is not None
        try:
            proc.stdin.write(self.spec.to_line())
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died at once: its exit status says more
        log.info("qjm: watcher process %d started", proc.pid)
        return await proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
