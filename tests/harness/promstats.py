"""Reading the processes' own Prometheus metrics: scrape /metrics, diff histograms over a window."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, *, timeout_seconds: float = 5.0) -> Samples:
    """Every sample at url as {(name, sorted labels): value}; empty when unreachable."""
    try:
        text = httpx.get(url, timeout=timeout_seconds).text
    except httpx.HTTPError:
        return {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


@dataclass(frozen=True)
class HistogramDelta:
    count: float
    total_seconds: float

    @property
    def mean(self) -> float | None:
        return self.total_seconds / self.count if self.count else None


def histogram_delta(before: Samples, after: Samples, name: str, **labels: str) -> HistogramDelta:
    """Observations of histogram `name` between two scrapes, summed over series matching labels."""
    sums: dict[str, float] = defaultdict(float)
    for snapshot, sign in ((after, 1.0), (before, -1.0)):
        for (sample_name, sample_labels), value in snapshot.items():
            if sample_name not in (f"{name}_count", f"{name}_sum"):
                continue
            have = dict(sample_labels)
            if any(have.get(k) != v for k, v in labels.items()):
                continue
            sums[sample_name.rsplit("_", 1)[1]] += sign * value
    return HistogramDelta(count=sums["count"], total_seconds=sums["sum"])


def counter_delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    total = 0.0
    for snapshot, sign in ((after, 1.0), (before, -1.0)):
        for (sample_name, sample_labels), value in snapshot.items():
            if sample_name != name:
                continue
            have = dict(sample_labels)
            if all(have.get(k) == v for k, v in labels.items()):
                total += sign * value
    return total
