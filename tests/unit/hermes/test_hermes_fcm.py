"""hermes.fcm.classify: which SDK errors are retried, which are final, and Retry-After."""

from __future__ import annotations

import email.utils
import time

import pytest
import requests
from firebase_admin import exceptions, messaging
from google.auth import exceptions as auth_exceptions
from trakr.hermes.fcm import SendError, classify


def response(**headers: str) -> requests.Response:
    resp = requests.Response()
    resp.headers.update(headers)
    return resp


@pytest.mark.parametrize(
    ("error", "code", "transient"),
    [
        (exceptions.UnavailableError("503"), "UNAVAILABLE", True),
        (exceptions.InternalError("500"), "INTERNAL", True),
        (messaging.QuotaExceededError("429"), "QUOTA_EXCEEDED", True),
        (exceptions.ResourceExhaustedError("429"), "RESOURCE_EXHAUSTED", True),
        (exceptions.DeadlineExceededError("timeout"), "DEADLINE_EXCEEDED", True),
        (exceptions.UnknownError("?"), "UNKNOWN", True),
        (exceptions.InvalidArgumentError("400"), "INVALID_ARGUMENT", False),
        (messaging.SenderIdMismatchError("403"), "SENDER_ID_MISMATCH", False),
        (messaging.UnregisteredError("404"), "UNREGISTERED", False),
        (messaging.ThirdPartyAuthError("401"), "THIRD_PARTY_AUTH_ERROR", False),
        (exceptions.PermissionDeniedError("403"), "PERMISSION_DENIED", False),
        (exceptions.NotFoundError("404"), "NOT_FOUND", False),
        (ValueError("Malformed topic name."), "INVALID_MESSAGE", False),
        (auth_exceptions.RefreshError("invalid_grant"), "AUTH_REFRESH_FAILED", True),
        (auth_exceptions.TransportError("refused"), "AUTH_UNAVAILABLE", True),
        (requests.ConnectionError("reset"), "NETWORK", True),
        (RuntimeError("bug"), "UNEXPECTED", True),
    ],
)
def test_classify(error: Exception, code: str, transient: bool) -> None:
    result = classify(error)
    assert result.code == code
    assert result.transient is transient


def test_rate_errors_are_rate_limited_and_carry_retry_after() -> None:
    result = classify(
        messaging.QuotaExceededError("429", http_response=response(**{"Retry-After": "3"}))
    )
    assert result.rate_limited and result.retry_after_seconds == 3
    assert not classify(exceptions.UnavailableError("503")).rate_limited


def test_retry_after_as_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    result = classify(
        exceptions.UnavailableError("503", http_response=response(**{"Retry-After": when}))
    )
    assert result.retry_after_seconds is not None and 25 <= result.retry_after_seconds <= 31


def test_unparseable_retry_after_is_ignored() -> None:
    result = classify(
        exceptions.UnavailableError("503", http_response=response(**{"Retry-After": "soon"}))
    )
    assert result.retry_after_seconds is None


def test_send_error_passes_through() -> None:
    error = SendError("UNAVAILABLE", "x", retry_after_seconds=1)
    assert classify(error) is error
    assert str(error) == "UNAVAILABLE: x"
