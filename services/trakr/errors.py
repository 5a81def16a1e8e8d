"""trakr's exceptions; each docstring is the default message."""

from __future__ import annotations


class TrakrError(Exception):
    """trakr failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class ConfigError(TrakrError):
    """The configuration is invalid."""


class InvalidScrape(TrakrError):
    """The scrape is not a valid University."""


class ScrapeRejected(InvalidScrape):
    """The scrape was rejected."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # a short, low-cardinality label for metrics ("duplicate_section", …)


class DatabaseUnavailable(TrakrError):
    """PostgreSQL cannot be reached."""


class RedisUnavailable(TrakrError):
    """Redis cannot be reached."""
