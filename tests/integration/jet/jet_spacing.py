"""Start real `trakr-jet --daemon` replicas and measure how evenly their scrapes are spaced.

Used by the sharding test, and runnable on its own to produce the figures for the docs:

    .venv/bin/python tests/integration/jet/jet_spacing.py [--interval 3] [--heartbeat 0.5] [--cycles 4]

Each replica runs the `record.sh FILE` fixture, which appends its own start time (epoch
seconds) to FILE; all replicas share one FILE, so its sorted contents are the scrape
start times of the whole group.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from trakr.jet.schedule import heartbeat_seconds
from trakr.settings import Settings

REPO = Path(__file__).resolve().parents[3]
SCRAPERS = REPO / "tests" / "fixtures" / "scrapers"
REDIS_URL = os.environ.get("TRAKR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def scraper_command(name: str, *args: str) -> list[str]:
    """A fixture scraper run by this interpreter (-I -S: fast start-up, stdlib only)."""
    return [sys.executable, "-I", "-S", str(SCRAPERS / name), *args]


def jet_command(*jet_args: str, scraper: list[str]) -> list[str]:
    return [sys.executable, "-m", "trakr.jet", *jet_args, "--", *scraper]


def jet_settings(namespace: str, **overrides: Any) -> Settings:
    """Settings for an in-process Jet: this test's namespace, short timeout, 1 MB output cap."""
    values: dict[str, Any] = {
        "redis_url": REDIS_URL,
        "namespace": namespace,
        "metrics_port": 0,
        "jet_scraper_name": "fixture",
        "jet_timeout_seconds": 2.0,
        "jet_max_output_bytes": 1024 * 1024,
    }
    values.update(overrides)
    return Settings(**values)


def jet_env(namespace: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    env.update(
        TRAKR_REDIS_URL=REDIS_URL, TRAKR_NAMESPACE=namespace, TRAKR_METRICS_PORT="0", **extra
    )
    return env


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    log: Path

    def events(self, event: str) -> list[dict[str, object]]:
        """The replica's JSON log lines with this event name."""
        found = []
        for line in self.log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == event:
                found.append(entry)
        return found


class Group:
    """Replicas of one scraper name, all recording their scrape start times into one file."""

    def __init__(
        self,
        workdir: Path,
        namespace: str,
        *,
        interval: float,
        heartbeat: float,
        name: str = "spacing",
    ):
        self.workdir = workdir
        self.namespace = namespace
        self.interval = interval
        self.heartbeat = heartbeat
        self.name = name
        self.record = workdir / "starts.txt"
        self.replicas: list[Replica] = []

    def start(self) -> Replica:
        log = self.workdir / f"replica-{len(self.replicas)}.log"
        env = jet_env(self.namespace, TRAKR_JET_HEARTBEAT_SECONDS=str(self.heartbeat))
        with open(log, "wb") as out:
            process = subprocess.Popen(
                jet_command(
                    "--scraper-name",
                    self.name,
                    "--daemon",
                    f"{self.interval}s",
                    "--timeout",
                    "10s",
                    scraper=[str(SCRAPERS / "record.sh"), str(self.record)],
                ),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        replica = Replica(process, log)
        self.replicas.append(replica)
        return replica

    def members(self) -> int:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            return int(client.zcard(f"{self.namespace}:jet:{self.name}:members"))
        finally:
            client.close()

    def wait_members(self, count: int, timeout: float) -> float:
        """Wait until the members set holds `count` ids; returns when that was seen."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.members() == count:
                return time.time()
            time.sleep(0.05)
        raise AssertionError(f"members set never reached {count} (now {self.members()})")

    def starts(self, since: float, until: float) -> list[float]:
        if not self.record.exists():
            return []
        times = sorted(float(line) for line in self.record.read_text().split())
        return [t for t in times if since <= t <= until]

    def stop_all(self) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()


@dataclass(frozen=True)
class Spacing:
    replicas: int
    expected: float
    gaps: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.gaps)

    @property
    def worst_deviation(self) -> float:
        return max(abs(g - self.expected) for g in self.gaps)

    def __str__(self) -> str:
        return (
            f"{self.replicas} replica(s): {len(self.gaps)} gaps, expected {self.expected:.3f}s, "
            f"mean {self.mean:.3f}s, worst deviation {self.worst_deviation * 1000:.0f}ms"
        )


def spacing(times: list[float], *, replicas: int, interval: float) -> Spacing:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps:
        raise AssertionError(f"too few scrapes to measure spacing: {times}")
    return Spacing(replicas=replicas, expected=interval / replicas, gaps=gaps)


def settle_time(times: list[float], *, after: float, expected: float, tolerance: float) -> float:
    """Seconds from `after` to the first scrape from which every later gap is expected ± tolerance."""
    later = [t for t in times if t >= after]
    for i in range(len(later) - 1):
        if all(
            abs((b - a) - expected) <= tolerance
            for a, b in zip(later[i:], later[i + 1 :], strict=False)
        ):
            return later[i] - after
    raise AssertionError(f"spacing never settled at {expected}s after {after}: {later}")


def measure(replicas: int, *, interval: float, heartbeat: float, cycles: int) -> Spacing:
    """Start `replicas` jets, let them settle, return the spacing of `cycles` intervals of scrapes."""
    namespace = f"trakrtest-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        group = Group(Path(tmp), namespace, interval=interval, heartbeat=heartbeat)
        try:
            for _ in range(replicas):
                group.start()
            group.wait_members(replicas, timeout=30)
            begin = time.time() + 2 * heartbeat + interval
            time.sleep(begin + cycles * interval - time.time() + 0.2)
            return spacing(
                group.starts(begin, begin + cycles * interval), replicas=replicas, interval=interval
            )
        finally:
            group.stop_all()
            _cleanup(namespace)


def measure_redivision(*, interval: float, heartbeat: float) -> tuple[float, float]:
    """Kill one of three; return seconds from the SIGKILL until both survivors logged their new
    position, and until the first scrape after that from which every gap is interval/2 ± 10 %."""
    namespace = f"trakrtest-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        group = Group(Path(tmp), namespace, interval=interval, heartbeat=heartbeat)
        try:
            for _ in range(3):
                group.start()
            group.wait_members(3, timeout=30)
            time.sleep(interval + 2 * heartbeat)
            killed_at = time.time()
            group.replicas[1].process.send_signal(signal.SIGKILL)
            time.sleep(3 * interval + 3 * heartbeat)
            survivors = [group.replicas[0], group.replicas[2]]
            noticed = max(
                min(
                    _ts(e)
                    for e in r.events("position")
                    if e.get("replicas") == 2 and _ts(e) >= killed_at
                )
                for r in survivors
            )
            settled = settle_time(
                group.starts(killed_at, time.time()),
                after=noticed,
                expected=interval / 2,
                tolerance=0.1 * interval,
            )
            return noticed - killed_at, noticed - killed_at + settled
        finally:
            group.stop_all()
            _cleanup(namespace)


def _ts(entry: dict[str, object]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(entry["ts"])).timestamp()


def _cleanup(namespace: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument(
        "--heartbeat", type=float, default=None, help="default: jet's own (interval/4, 1..5 s)"
    )
    parser.add_argument("--cycles", type=int, default=4)
    args = parser.parse_args()
    args.heartbeat = heartbeat_seconds(args.interval, args.heartbeat)
    print(
        f"interval {args.interval}s, heartbeat {args.heartbeat}s, {args.cycles} cycles per measurement"
    )
    for count in (1, 2, 3, 5):
        print(
            measure(count, interval=args.interval, heartbeat=args.heartbeat, cycles=args.cycles),
            flush=True,
        )
    noticed, settled = measure_redivision(interval=args.interval, heartbeat=args.heartbeat)
    print(
        f"kill 1 of 3: both survivors re-divided {noticed:.2f}s after the SIGKILL "
        f"(dead after {3 * args.heartbeat:g}s of silence); scrapes at interval/2 from {settled:.2f}s after it"
    )


if __name__ == "__main__":
    main()
