"""Running a scraper executable and turning its stdout into a checked, re-encoded payload.

The child runs without a shell, with stdin closed, in a session (so a process group) of its
own: a timeout or jet's shutdown kills the whole group — a scraper that forks helpers cannot
leave them behind. stdout is read in chunks and the child is killed as soon as it passes the
size cap, so a runaway scraper never makes jet hold more than the cap in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

from trakr.codec import (
    KnownSubjects,
    ScrapeRejected,
    decode_university,
    encode_university,
    validate_university,
)
from trakr.settings import WireFormat

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024
# A scraper that writes megabytes of diagnostics must not flood the log pipeline.
_STDERR_MAX_LINES = 500
_STDERR_MAX_LINE_CHARS = 4000
# After the child is gone, stderr may stay open in a straggler; don't wait on it forever.
_STDERR_DRAIN_SECONDS = 1.0


class ScrapeStopped(Exception):
    """jet is shutting down; the scraper was killed before it finished."""


@dataclass(frozen=True)
class ChildOutput:
    """What a finished scraper produced."""

    stdout: bytes
    started_at: float  # wall clock, just before the exec
    finished_at: float  # wall clock, when stdout was complete (EOF)
    duration_seconds: float  # monotonic, start to exit


@dataclass(frozen=True)
class Payload:
    """A validated scrape, re-encoded for the stream."""

    university: str  # the university's topic name
    data: bytes
    sha256: str
    sections: int


async def run_child(
    command: Sequence[str],
    *,
    timeout_seconds: float,
    max_output_bytes: int,
    stop: asyncio.Event | None = None,
    kill_grace_seconds: float = 2.0,
    label: str | None = None,
) -> ChildOutput:
    """Run the scraper to completion and return its stdout.

    Raises ScrapeRejected (exec_error, timeout, too_large, exit_status) or ScrapeStopped.
    Never leaves the child's process group running when it raises.
    """
    loop = asyncio.get_running_loop()
    started_at = time.time()
    started = loop.time()
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ScrapeRejected(
            "exec_error", f"cannot start {command[0]}: {exc.strerror or exc}"
        ) from exc
    logger.debug(
        "scraper started, pid %d", proc.pid, extra={"event": "scraper_started", "pid": proc.pid}
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr_task = asyncio.create_task(
        _relay_stderr(proc.stderr, label or os.path.basename(command[0])), name="scraper-stderr"
    )
    collect = asyncio.create_task(_collect(proc, max_output_bytes), name="scraper-stdout")
    stopper = asyncio.create_task(
        stop.wait() if stop else asyncio.Event().wait(), name="scraper-stop"
    )
    killed = False
    try:
        done, _ = await asyncio.wait(
            {collect, stopper}, timeout=timeout_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if collect in done:
            try:
                stdout, finished_at = collect.result()
            except ScrapeRejected:
                killed = True
                raise
            # proc.wait() already returned inside _collect.
            if proc.returncode != 0:
                raise ScrapeRejected("exit_status", _describe_exit(proc.returncode))
            return ChildOutput(
                stdout=stdout,
                started_at=started_at,
                finished_at=finished_at,
                duration_seconds=loop.time() - started,
            )
        killed = True
        if stopper in done:
            raise ScrapeStopped("jet is stopping: scraper killed")
        raise ScrapeRejected(
            "timeout", f"scraper did not finish within {timeout_seconds:g}s: killed"
        )
    finally:
        stopper.cancel()
        if not collect.done():
            collect.cancel()
        if killed or proc.returncode is None:
            await _kill_group(proc, kill_grace_seconds)
        try:
            await asyncio.wait_for(asyncio.shield(stderr_task), _STDERR_DRAIN_SECONDS)
        except TimeoutError:
            stderr_task.cancel()


def prepare_payload(
    stdout: bytes,
    *,
    input_format: WireFormat,
    output_format: WireFormat,
    max_output_bytes: int,
    known: KnownSubjects | None = None,
) -> Payload:
    """Check a scraper's stdout and re-encode it; raises ScrapeRejected naming the first problem.

    CPU-heavy for a big university (tens of MB of JSON): call it in a worker thread. `known`:
    the same object on every call for one scraper, so unchanged subjects are not walked again.
    """
    if not stdout.strip():
        raise ScrapeRejected("empty", "the scraper printed nothing")
    if len(stdout) > max_output_bytes:
        raise ScrapeRejected(
            "too_large", f"output of {len(stdout)} bytes is over the {max_output_bytes}-byte cap"
        )
    if input_format == output_format == "protobuf" and known is not None:
        accepted = known.accept(stdout)
        if accepted is not None:
            # Valid with every topic right: the scraper's bytes are queued as they are (below).
            return Payload(
                university=accepted.university,
                data=stdout,
                sha256=hashlib.sha256(stdout).hexdigest(),
                sections=accepted.counts.sections,
            )
    university = decode_university(stdout, input_format)
    counts = validate_university(university)
    if input_format == output_format == "protobuf" and counts.topics_written == 0:
        # Validation changed nothing: the scraper's bytes are the message (unknown fields
        # included, as SerializeToString would keep them); re-encoding 10,000 sections cost
        # ~10 ms for the same content. A non-canonical encoding only risks one extra queued
        # scrape, never a skipped one: the unchanged check compares hashes of these bytes.
        data = stdout
    else:
        data = encode_university(university, output_format)
    return Payload(
        university=university.topic_name,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        sections=counts.sections,
    )


async def _collect(proc: asyncio.subprocess.Process, max_output_bytes: int) -> tuple[bytes, float]:
    """Read stdout to EOF (at most the cap), then wait for the exit; returns (stdout, EOF wall time)."""
    assert proc.stdout is not None
    buffer = bytearray()
    while chunk := await proc.stdout.read(_CHUNK_BYTES):
        buffer += chunk
        if len(buffer) > max_output_bytes:
            raise ScrapeRejected(
                "too_large", f"output passed the {max_output_bytes}-byte cap: scraper killed"
            )
    finished_at = time.time()
    await proc.wait()
    return bytes(buffer), finished_at


async def _relay_stderr(stream: asyncio.StreamReader, name: str) -> None:
    """Log the scraper's stderr line by line (bounded), until EOF, each prefixed with `name`."""
    pending = b""
    lines = dropped = 0

    def emit(raw: bytes) -> None:
        nonlocal lines, dropped
        text = raw.decode(errors="replace").rstrip("\r")
        if not text.strip():
            return
        if lines >= _STDERR_MAX_LINES:
            dropped += 1
            return
        lines += 1
        if len(text) > _STDERR_MAX_LINE_CHARS:
            text = text[:_STDERR_MAX_LINE_CHARS] + "…"
        logger.info("%s: %s", name, text, extra={"event": "scraper_stderr"})

    while chunk := await stream.read(_CHUNK_BYTES):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            emit(raw)
        if len(pending) > _STDERR_MAX_LINE_CHARS * 4:
            emit(pending)
            pending = b""
    if pending:
        emit(pending)
    if dropped:
        logger.warning(
            "%s: %d more stderr lines not logged",
            name,
            dropped,
            extra={"event": "scraper_stderr_dropped"},
        )


async def _kill_group(proc: asyncio.subprocess.Process, grace_seconds: float) -> None:
    """SIGTERM the child's process group, SIGKILL it after the grace period; reap the child."""
    # asyncio's Process.wait() returns only once the pipes are closed too: keep emptying
    # stdout, or a child blocked writing into a full pipe would look like one ignoring SIGTERM.
    drain = asyncio.create_task(_discard(proc.stdout), name="scraper-drain")
    try:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace_seconds)
        except TimeoutError:
            logger.warning(
                "scraper ignored SIGTERM: SIGKILL",
                extra={"event": "scraper_sigkill", "pid": proc.pid},
            )
        # Helpers the scraper forked are in its group too; none may outlive a killed scrape.
        _signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
    finally:
        drain.cancel()


async def _discard(stream: asyncio.StreamReader | None) -> None:
    if stream is not None:
        while await stream.read(_CHUNK_BYTES):
            pass


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _describe_exit(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"scraper was killed by signal {signal.Signals(-returncode).name}"
    return f"scraper exited with status {returncode}"
