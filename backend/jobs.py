"""Long-running work: one registry, progress events, cancel.

A job is a function run off the caller's thread. It reports through its :class:`JobContext`; every
report becomes an event (a plain dict) handed to the registry's listeners, which the app forwards to
the UI and the CLI draws as a progress bar. The progress shape follows ollama-python's
``ProgressResponse``: ``status``, ``completed``, ``total``, plus job-specific fields.

Jobs that must not be able to take the app down (training) run in a subprocess that prints one JSON
event per line on stdout; :func:`run_json_lines_subprocess` relays those lines as events.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from backend.errors import CancelledError, JobError, NotFoundError, OrchMindError, ReportedError

log = logging.getLogger("orch_mind.jobs")

Event = dict[str, Any]
Listener = Callable[[Event], None]
JobFunction = Callable[["JobContext"], Any]

TERMINAL_STATES = ("succeeded", "failed", "cancelled")


@dataclass
class JobRecord:
    id: str
    kind: str
    title: str
    state: str = "queued"  # queued | running | succeeded | failed | cancelled
    status: str = ""
    completed: int = 0
    total: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    result: Any = None
    error: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "state": self.state,
            "status": self.status,
            "completed": self.completed,
            "total": self.total,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
            "extra": self.extra,
        }


class JobContext:
    """What a running job sees: report progress, log lines, and check for cancellation."""

    def __init__(self, registry: JobRegistry, record: JobRecord) -> None:
        self._registry = registry
        self._record = record
        self._cancel = threading.Event()
        self.process: subprocess.Popen[str] | None = None

    @property
    def job_id(self) -> str:
        return self._record.id

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise CancelledError("The job was cancelled.")

    def progress(self, status: str, completed: int | None = None, total: int | None = None, **extra: Any) -> None:
        record = self._record
        record.status = status
        if completed is not None:
            record.completed = int(completed)
        if total is not None:
            record.total = int(total)
        record.extra.update(extra)
        self._registry._emit(
            {"type": "progress", "job_id": record.id, "kind": record.kind, "status": status,
             "completed": record.completed, "total": record.total, **extra}
        )

    def emit(self, event_type: str, **fields: Any) -> None:
        """A job-specific event (e.g. a chat token) on the same channel as progress."""
        self._registry._emit({"type": event_type, "job_id": self._record.id, **fields})

    def log(self, line: str) -> None:
        self._registry._emit({"type": "log", "job_id": self._record.id, "line": line})

    def _request_cancel(self) -> None:
        self._cancel.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()


class Steps:
    """Progress and cancel points for work that runs both as a job and outside one (the CLI): each
    step first stops the job if it was cancelled, then reports itself; without a job it does nothing."""

    def __init__(self, context: JobContext | None = None) -> None:
        self._context = context

    def __call__(self, status: str, completed: int | None = None, total: int | None = None) -> None:
        if self._context is not None:
            self._context.raise_if_cancelled()
            self._context.progress(status, completed, total)


class JobRegistry:
    """The one registry of jobs for a process. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRecord] = {}
        self._contexts: dict[str, JobContext] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def start(self, kind: str, title: str, function: JobFunction) -> str:
        record = JobRecord(id=uuid.uuid4().hex[:12], kind=kind, title=title)
        context = JobContext(self, record)
        thread = threading.Thread(target=self._run, args=(record, context, function), name=f"job-{record.id}", daemon=True)
        with self._lock:
            self._jobs[record.id] = record
            self._contexts[record.id] = context
            self._threads[record.id] = thread
        self._emit({"type": "job", "job": record.to_dict()})
        thread.start()
        return record.id

    def _run(self, record: JobRecord, context: JobContext, function: JobFunction) -> None:
        record.state = "running"
        self._emit({"type": "job", "job": record.to_dict()})
        try:
            record.result = function(context)
            record.state = "cancelled" if context.cancelled else "succeeded"
        except CancelledError as exc:
            record.state = "cancelled"
            record.error = exc.to_dict()
        except OrchMindError as exc:
            record.state = "failed"
            record.error = exc.to_dict()
        except Exception:  # noqa: BLE001 - the job boundary: log the traceback, show a stable message
            log.exception("job %s (%s) failed", record.id, record.kind)
            record.state = "failed"
            record.error = {"code": "internal_error",
                            "message": f"{record.title} failed because of an error inside Orch-Mind; details are in the log."}
        record.finished_at = time.time()
        self._emit({"type": "job", "job": record.to_dict()})

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            record = self._jobs.get(job_id)
        if record is None:
            raise NotFoundError(f"No job with id {job_id!r}.")
        return record

    def list(self) -> list[JobRecord]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda r: r.started_at, reverse=True)

    def cancel(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record.state not in TERMINAL_STATES:
            self._contexts[job_id]._request_cancel()
        return record

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        self.get(job_id)
        self._threads[job_id].join(timeout)
        return self.get(job_id)

    def _emit(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)


def run_json_lines_subprocess(context: JobContext, command: list[str], *, env: dict[str, str] | None = None) -> Event | None:
    """Run ``command``, relaying each JSON line it prints as a job event.

    Lines that are not JSON are relayed as log lines. Returns the last ``{"type": "result"}`` event.
    A non-zero exit raises :class:`JobError` with the process's last ``error`` event or stderr tail.
    """
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, bufsize=1
    )
    context.process = process
    stderr_tail: list[str] = []

    def drain_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr_tail.append(line.rstrip())
            del stderr_tail[:-40]
            context.log(line.rstrip())

    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    result: Event | None = None
    error: Event | None = None
    assert process.stdout is not None
    for event in parse_json_lines(process.stdout):
        kind = event.get("type")
        if kind == "progress":
            fields = {k: v for k, v in event.items() if k not in ("type", "status", "completed", "total")}
            context.progress(str(event.get("status", "")), event.get("completed"), event.get("total"), **fields)
        elif kind == "result":
            result = event
        elif kind == "error":
            error = event
        elif kind == "log" or not isinstance(kind, str):
            context.log(str(event.get("line", event)))
        else:  # job-specific events (eval, checkpoint, …) pass through unchanged
            context.emit(kind, **{k: v for k, v in event.items() if k not in ("type", "job_id")})
    code = process.wait()
    reader.join(timeout=5)
    if context.cancelled:
        raise CancelledError("The job was cancelled.")
    if code != 0:
        if error is not None:
            raise ReportedError(str(error.get("message", "The job failed.")), str(error.get("code", "job_failed")))
        log.error("job process %s exited with code %s; its last lines:\n%s", command[:3], code, "\n".join(stderr_tail))
        reason = "was stopped by the system (out of memory?)" if code in (-9, 137) else f"exited with code {code}"
        raise JobError(f"The job's process {reason}; details are in the log.")
    return result


def parse_json_lines(lines: Iterable[str]) -> Iterable[Event]:
    """Yield one event per line; a line that is not a JSON object becomes a ``log`` event."""
    for line in lines:
        text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            yield {"type": "log", "line": text}
            continue
        yield value if isinstance(value, dict) else {"type": "log", "line": text}


