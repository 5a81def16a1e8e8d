"""The real `trakr-jet` process: exit codes, a daemon that outlives bad scrapes, SIGTERM, real data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from jet_spacing import REDIS_URL, jet_command, jet_env, scraper_command
from trakr.codec import decode_university

REALDATA = Path(
    os.environ.get(
        "TRAKR_TEST_REALDATA", Path(__file__).resolve().parents[4] / "shared" / "realdata"
    )
)
NB_COURSES = REALDATA / "rutgers_2026spring_NB_courses_2025-11-15T200031Z.json.gz"
OPEN_SECTIONS_1 = REALDATA / "rutgers_2026spring_openSections_2025-11-15T200031Z.json"
RUTGERS = Path(sys.executable).parent / "trakr-scrape-rutgers"


@pytest.fixture
def sync_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def run_jet(
    namespace: str, *jet_args: str, scraper: list[str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        jet_command("--scraper-name", "fixture", *jet_args, scraper=scraper),
        env=jet_env(namespace),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def log_events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_once_exit_codes_and_one_line_reason(namespace: str, sync_redis: redis.Redis) -> None:
    ok = run_jet(namespace, scraper=scraper_command("university.py"))
    assert ok.returncode == 0, ok.stderr
    assert sync_redis.xlen(f"{namespace}:scrapes") == 1
    same = run_jet(namespace, scraper=scraper_command("university.py"))
    assert same.returncode == 0
    assert any(e.get("result") == "unchanged" for e in log_events(same.stdout))
    bad = run_jet(namespace, "--timeout", "500ms", scraper=scraper_command("garbage.py"))
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: scrape rejected (parse_error): ")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert sync_redis.xlen(f"{namespace}:scrapes") == 1


def test_usage_errors_exit_2(namespace: str) -> None:
    no_name = subprocess.run(
        [sys.executable, "-m", "trakr.jet", "--", "true"],
        env=jet_env(namespace),
        capture_output=True,
        text=True,
    )
    assert no_name.returncode == 2
    assert "--scraper-name" in no_name.stderr
    missing = run_jet(namespace, scraper=["/nonexistent/scraper"])
    assert missing.returncode == 2
    assert "not found" in missing.stderr
    bad_duration = run_jet(namespace, "--daemon", "soon", scraper=["true"])
    assert bad_duration.returncode == 2
    helped = subprocess.run(
        [sys.executable, "-m", "trakr.jet", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0
    assert "TRAKR_JET_DAEMON_INTERVAL_SECONDS" in helped.stdout


def test_daemon_survives_bad_scrapes_and_leaves_on_sigterm(
    namespace: str, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    """cycle.py prints garbage, exits 1, prints nothing, then succeeds: the daemon gets through it all."""
    env = jet_env(namespace, TRAKR_JET_HEARTBEAT_SECONDS="0.25")
    log = tmp_path / "jet.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            jet_command(
                "--scraper-name",
                "cycle",
                "--daemon",
                "500ms",
                "--daemon-dir",
                str(tmp_path / "out"),
                scraper=scraper_command("cycle.py", str(tmp_path / "state")),
            ),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.time() + 30
        while sync_redis.xlen(f"{namespace}:scrapes") < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert sync_redis.xlen(f"{namespace}:scrapes") >= 2, log.read_text()
        assert sync_redis.zcard(f"{namespace}:jet:cycle:members") == 1
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
    events = log_events(log.read_text())
    results = [e["result"] for e in events if e.get("event") in ("scrape_rejected", "scrape_done")]
    assert results[:4] == ["parse_error", "exit_status", "empty", "queued"], results
    assert code == 0
    assert sync_redis.zcard(f"{namespace}:jet:cycle:members") == 0
    assert any(e.get("event") == "left" for e in events)
    assert len(list((tmp_path / "out").iterdir())) >= 2


@pytest.mark.slow
@pytest.mark.skipif(not RUTGERS.exists(), reason="trakr-scrape-rutgers not installed")
def test_real_rutgers_data_through_jet(namespace: str, sync_redis: redis.Redis) -> None:
    scraper = [
        str(RUTGERS),
        "--courses",
        str(NB_COURSES),
        "--open-sections",
        str(OPEN_SECTIONS_1),
    ]
    done = subprocess.run(
        jet_command("--scraper-name", "rutgers-nb", "--timeout", "120s", scraper=scraper),
        env=jet_env(namespace),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    [(_, fields)] = sync_redis.xrange(f"{namespace}:scrapes")
    assert fields[b"university"] == b"rutgers-nb"
    assert fields[b"scraper"] == b"rutgers-nb"
    university = decode_university(fields[b"payload"], "protobuf")
    sections = [s for subject in university.subjects for c in subject.courses for s in c.sections]
    assert len(sections) == 11_680
    assert len({s.topic_name for s in sections}) == 11_680
    assert float(fields[b"started_at"]) < float(fields[b"scraped_at"])


def test_200mb_scraper_is_cut_off_without_jet_holding_it(namespace: str, tmp_path: Path) -> None:
    """huge.py prints 200 MB; with an 8 MB cap jet kills it early and its peak memory stays small."""
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(f'{done.returncode} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n')\n"
        "sys.stderr.write(done.stderr)\n"
    )
    command = jet_command("--scraper-name", "fixture", scraper=scraper_command("huge.py"))
    env = jet_env(namespace, TRAKR_JET_MAX_OUTPUT_BYTES=str(8 * 1024 * 1024))
    done = subprocess.run(
        [sys.executable, "-c", probe, *command], env=env, capture_output=True, text=True, timeout=60
    )
    code, max_rss_kib = (int(x) for x in done.stdout.split())
    assert code == 1
    assert "scrape rejected (too_large)" in done.stderr
    # The largest child (jet itself: interpreter, protobuf, redis) stays far below 200 MB.
    assert max_rss_kib < 120 * 1024, max_rss_kib
