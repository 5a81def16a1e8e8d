"""Ground truth: what jet queued, what the database recorded, what the emulator received.

The scrapes stream is the record of what the scrapers printed and jet accepted: every entry
(kept whole — the harness sets a large MAXLEN and checks nothing was trimmed) is decoded, and
the section statuses of consecutive snapshots, in stream order, give the status changes that
must each become one notification. Scrapes jet never made (jet down, Redis down) are simply
not in the stream, so they are not expected.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import psycopg
import redis
from trakr.codec import decode_university
from trakr.pb.trakr_pb2 import Section

STATUS_NAMES = {value: name for name, value in Section.Status.items()}


@dataclass(frozen=True)
class Scrape:
    entry_id: str
    scraped_at: float
    statuses: dict[str, str]  # section topic -> status


@dataclass(frozen=True)
class Change:
    topic: str
    old: str
    new: str
    scraped_at: float  # the scrape that first showed it (scraper's stdout EOF, wall clock)
    entry_id: str


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_entry(entry_id: str, fields: dict[bytes, bytes]) -> Scrape:
    fmt = _text(fields.get(b"format", b"protobuf"))
    university = decode_university(fields[b"payload"], fmt)  # type: ignore[arg-type]
    statuses = {
        section.topic_name: STATUS_NAMES[section.status]
        for subject in university.subjects
        for course in subject.courses
        for section in course.sections
    }
    return Scrape(entry_id, float(_text(fields[b"scraped_at"])), statuses)


def read_scrapes(
    client: redis.Redis, stream: str, *, after: str = "-", require_whole: bool = True
) -> list[Scrape]:
    """Every entry of the scrapes stream after `after`, decoded, in stream order."""
    if require_whole:
        info = client.xinfo_stream(stream)
        added = info.get("entries-added")
        if added is not None and int(added) != int(info["length"]):
            raise AssertionError(
                f"{stream} was trimmed ({info['length']} of {added} entries kept): raise the MAXLEN"
            )
    scrapes: list[Scrape] = []
    start = after if after == "-" else f"({after}"
    while True:
        batch = client.xrange(stream, min=start, max="+", count=200)
        if not batch:
            return scrapes
        for entry_id, fields in batch:
            scrapes.append(decode_entry(_text(entry_id), fields))
        start = f"({_text(batch[-1][0])}"


def changes_between(previous: Scrape, current: Scrape) -> list[Change]:
    """Sections present in both whose status differs (new sections are not events)."""
    return [
        Change(topic, previous.statuses[topic], status, current.scraped_at, current.entry_id)
        for topic, status in current.statuses.items()
        if topic in previous.statuses and previous.statuses[topic] != status
    ]


def expected_changes(scrapes: list[Scrape], *, baseline: Scrape | None = None) -> list[Change]:
    """Status changes across consecutive scrapes in stream order."""
    changes: list[Change] = []
    previous = baseline
    for scrape in scrapes:
        if previous is not None:
            changes.extend(changes_between(previous, scrape))
        previous = scrape
    return changes


@dataclass
class Reconciliation:
    """The end-of-run comparison; `lost` must be 0."""

    scrapes: int = 0
    changes: int = 0
    notifications: int = 0
    collapsed: int = 0
    not_notified: int = 0  # a change jet queued with no notification row for it
    spurious: int = 0  # a notification row no queued change explains
    broken_chains: int = 0  # a topic whose rows do not chain old→new
    undelivered: int = 0  # non-collapsed notification without a 'sent' delivery
    failed_deliveries: int = 0
    pushes: int = 0
    pushed_notifications: int = 0
    duplicates: int = 0  # extra pushes of one notification (sends in flight at a kill)
    sent_not_pushed: int = 0  # delivery says sent, the emulator never got it
    pushed_not_recorded: int = 0  # the emulator got it, no 'sent' delivery row
    payload_mismatches: int = 0  # push data (topic/status) differs from the notification row
    final_status_mismatches: int = 0  # section status in the DB differs from the last scrape
    last_push_mismatches: int = 0  # what a subscriber heard last is not the section's status
    details: list[str] = field(default_factory=list)
    # notification id -> received_at of each push, for notifications pushed more than once
    duplicate_pushes: dict[int, list[float]] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return (
            self.not_notified
            + self.undelivered
            + self.sent_not_pushed
            + self.final_status_mismatches
        )


def _match(expected: list[tuple[str, str]], actual: list[tuple[str, str]]) -> tuple[int, int]:
    """(unmatched expected, unmatched actual) after an in-order (LCS) match of two sequences."""
    n, m = len(expected), len(actual)
    if expected == actual:
        return 0, 0
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = (
                table[i + 1][j + 1] + 1
                if expected[i] == actual[j]
                else max(table[i + 1][j], table[i][j + 1])
            )
    common = table[0][0]
    return n - common, m - common


def reconcile(
    *,
    dsn: str,
    scrapes: list[Scrape],
    messages: list[dict],
    max_details: int = 20,
) -> Reconciliation:
    """Compare the scrapes jet queued, the outbox and deliveries, and the emulator's messages."""
    result = Reconciliation(scrapes=len(scrapes))
    changes = expected_changes(scrapes)
    result.changes = len(changes)
    expected: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for change in changes:
        expected[change.topic].append((change.old, change.new))

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT n.id, n.topic_name, n.old_status, n.new_status, n.state, d.state"
            " FROM notification n LEFT JOIN delivery d ON d.notification_id = n.id ORDER BY n.id"
        ).fetchall()
        db_status = dict(conn.execute("SELECT topic_name, status FROM section").fetchall())

    actual: dict[str, list[tuple[str, str]]] = defaultdict(list)
    by_id: dict[int, tuple[str, str, str, str | None]] = {}
    for nid, topic, old, new, state, delivery in rows:
        actual[topic].append((old, new))
        by_id[nid] = (topic, new, state, delivery)
        if state == "collapsed":
            result.collapsed += 1
            continue
        if delivery == "failed":
            result.failed_deliveries += 1
        if delivery != "sent":
            result.undelivered += 1
            _note(
                result,
                max_details,
                f"notification {nid} ({topic} → {new}) state={state} delivery={delivery}",
            )
    result.notifications = len(rows)

    for topic in set(expected) | set(actual):
        missing, extra = _match(expected.get(topic, []), actual.get(topic, []))
        result.not_notified += missing
        result.spurious += extra
        if missing or extra:
            want, got = expected.get(topic, []), actual.get(topic, [])
            at = next(
                (i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b),
                min(len(want), len(got)),
            )
            _note(
                result,
                max_details,
                f"{topic}: {len(want)} changes expected, {len(got)} notification rows; first"
                f" difference at #{at}: expected {want[at : at + 3]}, got {got[at : at + 3]}",
            )
        chain = actual.get(topic, [])
        if any(chain[i][1] != chain[i + 1][0] for i in range(len(chain) - 1)):
            result.broken_chains += 1

    if scrapes:
        for topic, status in scrapes[-1].statuses.items():
            if db_status.get(topic) != status:
                result.final_status_mismatches += 1
                _note(
                    result,
                    max_details,
                    f"{topic}: last scrape says {status}, database {db_status.get(topic)}",
                )

    pushes: Counter[int] = Counter()
    times: dict[int, list[float]] = defaultdict(list)
    for message in messages:
        data = message.get("data") or {}
        try:
            nid = int(data["notification_id"])
        except (KeyError, TypeError, ValueError):
            result.payload_mismatches += 1
            continue
        pushes[nid] += 1
        times[nid].append(float(message.get("received_at", 0.0)))
        known = by_id.get(nid)
        if (
            known is None
            or data.get("topic", message.get("topic")) != known[0]
            or data.get("status") != known[1]
        ):
            result.payload_mismatches += 1
    result.pushes = sum(pushes.values())
    result.pushed_notifications = len(pushes)
    result.duplicates = sum(count - 1 for count in pushes.values() if count > 1)
    result.duplicate_pushes = {nid: times[nid] for nid, count in pushes.items() if count > 1}
    for nid, (topic, new, _state, delivery) in by_id.items():
        if delivery == "sent" and nid not in pushes:
            result.sent_not_pushed += 1
            _note(
                result,
                max_details,
                f"notification {nid} ({topic} → {new}) recorded sent, never pushed",
            )
    # Collapsing may skip intermediate states, never the last one: the latest push of each topic
    # (highest notification id pushed) must announce the section's current status.
    last_pushed: dict[str, tuple[int, str]] = {}
    for nid in pushes:
        known = by_id.get(nid)
        if known is not None and (known[0] not in last_pushed or nid > last_pushed[known[0]][0]):
            last_pushed[known[0]] = (nid, known[1])
    for topic, (nid, status) in last_pushed.items():
        if db_status.get(topic) not in (None, status):
            result.last_push_mismatches += 1
            _note(
                result,
                max_details,
                f"{topic}: last push {nid} said {status}, section is {db_status.get(topic)}",
            )
    result.pushed_not_recorded = sum(
        1 for nid in pushes if (by_id.get(nid) or (0, 0, 0, None))[3] != "sent"
    )
    return result


def _note(result: Reconciliation, limit: int, text: str) -> None:
    if len(result.details) < limit:
        result.details.append(text)


def unexplained_by_simulator(scrapes: list[Scrape], **sim_args: object) -> list[str]:
    """Entry ids of scrapes that match no simulator tick near their time (expect none).

    An independent check of the ground truth: what jet queued must be exactly what
    trakr-scrape-sim printed for the tick it ran in (the tick is the wall-clock second the
    scraper started, at most a few seconds before its stdout ended).
    """
    from trakr.scrapers.sim import simulate

    cache: dict[int, dict[str, str]] = {}

    def statuses(tick: int) -> dict[str, str]:
        if tick not in cache:
            university = simulate(tick=tick, **sim_args)  # type: ignore[arg-type]
            cache[tick] = {
                section.topic_name: STATUS_NAMES[section.status]
                for subject in university.subjects
                for course in subject.courses
                for section in course.sections
            }
        return cache[tick]

    return [
        scrape.entry_id
        for scrape in scrapes
        if not any(
            statuses(tick) == scrape.statuses
            for tick in range(int(scrape.scraped_at), int(scrape.scraped_at) - 11, -1)
        )
    ]
