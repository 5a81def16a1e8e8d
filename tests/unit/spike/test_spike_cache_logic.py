from __future__ import annotations

from trakr.spike.cache import ALL_UNIVERSITIES, CircuitBreaker, Entry, LocalCache, university_of


def test_university_of() -> None:
    assert university_of("/v1/universities") == ALL_UNIVERSITIES
    assert university_of("/v1/universities/rutgers-nb") == "rutgers-nb"
    assert university_of("/v1/universities/rutgers-nb/subjects") == "rutgers-nb"
    assert university_of("/v1/courses/rutgers-nb.198.spring.2026.01-198-111") == "rutgers-nb"
    assert (
        university_of("/v1/sections/rutgers-nb.198.spring.2026.x.01.09214/history") == "rutgers-nb"
    )


def test_breaker_opens_after_a_failure_and_closes_after_its_time() -> None:
    now = [100.0]
    breaker = CircuitBreaker(open_seconds=2.0, clock=lambda: now[0])
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow() and breaker.is_open
    now[0] = 101.9
    assert not breaker.allow()
    now[0] = 102.0
    assert breaker.allow()


def test_local_cache_expires_bounds_and_invalidates() -> None:
    now = [0.0]
    local = LocalCache(ttl_seconds=1.0, max_entries=2, clock=lambda: now[0])
    a, b, c = Entry('"a"', b"a"), Entry('"b"', b"b"), Entry('"c"', b"c")
    local.put("k1", "u1", a)
    local.put("k2", "u2", b)
    assert local.get("k1") == a
    local.put("k3", "u1", c)  # over the bound: the oldest insertion goes
    assert local.get("k1") is None and local.get("k2") == b
    local.invalidate({"u2"})
    assert local.get("k2") is None and local.get("k3") == c
    now[0] = 1.0
    assert local.get("k3") is None


def test_local_cache_off_when_ttl_is_zero() -> None:
    local = LocalCache(ttl_seconds=0.0)
    local.put("k", "u", Entry('"x"', b"x"))
    assert local.get("k") is None
