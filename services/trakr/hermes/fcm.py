"""Sending to FCM: the FcmSender seam, the firebase-admin implementation, error classification."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import firebase_admin
import requests
from firebase_admin import credentials, exceptions, messaging
from google.auth import exceptions as auth_exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

GOOGLE_FCM_ORIGIN = "https://fcm.googleapis.com"

# Errors worth another attempt; anything else FCM answers is final for that message.
TRANSIENT_CODES = frozenset(
    {
        "UNAVAILABLE",
        "INTERNAL",
        "QUOTA_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "DEADLINE_EXCEEDED",
        "UNKNOWN",
        "ABORTED",
        # A token the emulator/Google no longer accepts, or a token endpoint that is down:
        # a configuration or outage problem, bounded by hermes_max_attempts like the others.
        "UNAUTHENTICATED",
        "AUTH_REFRESH_FAILED",
        "AUTH_UNAVAILABLE",
        "NETWORK",
        "UNEXPECTED",
    }
)
RATE_CODES = frozenset({"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"})
# FCM-specific exception classes carry a sharper code than their canonical status.
_FCM_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (messaging.QuotaExceededError, "QUOTA_EXCEEDED"),
    (messaging.SenderIdMismatchError, "SENDER_ID_MISMATCH"),
    (messaging.UnregisteredError, "UNREGISTERED"),
    (messaging.ThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"),
)


class SendError(Exception):
    """A send that FCM did not accept: its error code, whether to retry, and any Retry-After."""

    # Not a frozen dataclass: Python code (contextlib, asyncio) assigns __traceback__ on exceptions.
    def __init__(
        self, code: str, message: str = "", *, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.retry_after_seconds = retry_after_seconds

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES

    @property
    def rate_limited(self) -> bool:
        return self.code in RATE_CODES


class FcmSender(Protocol):
    """What hermes needs from FCM. `send` returns FCM's message name or raises SendError."""

    async def send(self, message: messaging.Message, *, dry_run: bool) -> str: ...

    async def close(self) -> None: ...


def classify(exc: BaseException) -> SendError:
    """Map whatever the SDK raised to a SendError (pure; the SDK's exception types decide)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, exceptions.FirebaseError):
        code = next((c for cls, c in _FCM_CODES if isinstance(exc, cls)), None) or str(exc.code)
        return SendError(code, str(exc), retry_after_seconds=_retry_after(exc.http_response))
    if isinstance(exc, auth_exceptions.RefreshError):
        return SendError("AUTH_REFRESH_FAILED", str(exc))
    if isinstance(exc, auth_exceptions.TransportError):
        return SendError("AUTH_UNAVAILABLE", str(exc))
    if isinstance(exc, requests.RequestException | ConnectionError | TimeoutError):
        return SendError("NETWORK", str(exc))
    if isinstance(exc, ValueError):
        # The SDK validates messages locally (topic charset, field types) and raises ValueError.
        return SendError("INVALID_MESSAGE", str(exc))
    return SendError("UNEXPECTED", f"{type(exc).__name__}: {exc}")


def _retry_after(response: Any) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def point_sdk_at(app: firebase_admin.App, base_url: str, *, pool_size: int) -> str:
    """Make `messaging.send(..., app=app)` post to `base_url`; returns the send URL.

    THE one place hermes reaches into firebase-admin (pinned by
    tests/unit/hermes/test_hermes_sdk_pin.py, which fails if an SDK upgrade moves any of this).
    firebase-admin has no public option for the FCM endpoint: `_MessagingService.__init__`
    formats the class constant `FCM_URL` ('https://fcm.googleapis.com/v1/projects/{0}/messages:send')
    into the instance attribute `_fcm_url`, which `send()` posts to. We take the SDK's own path
    template, swap its origin for TRAKR_FCM_URL and set `_fcm_url` on this app's service only (no
    process-wide class mutation). This runs for the default Google URL too, so production and
    tests share the code path.

    The SDK also mounts, for its hard-coded origin only, a 100-connection pool whose urllib3
    Retry re-sends 500/503 up to four times with sleeps inside the calling thread. We mount our
    own adapter for the configured origin instead: a pool as large as our concurrency (the
    default pool of 10 would open and drop a connection per send above 10 in flight) and no
    status or read retries — hermes retries itself with jitter, Retry-After and per-topic pacing,
    and a blind read retry of a POST is a duplicate push. Connect errors are retried once: such
    a request never reached FCM. Finally the session stops re-reading the environment on every
    send (`settle_environment`).
    """
    origin = base_url.rstrip("/")
    service = messaging._get_messaging_service(app)
    template = messaging._MessagingService.FCM_URL
    if not template.startswith(GOOGLE_FCM_ORIGIN):
        raise RuntimeError(
            f"firebase-admin's FCM_URL changed shape ({template!r}); re-check point_sdk_at"
        )
    url = origin + template[len(GOOGLE_FCM_ORIGIN) :].format(app.project_id)
    service._fcm_url = url
    retry = Retry(
        total=1, connect=1, read=0, status=0, other=0, allowed_methods=None, raise_on_status=False
    )
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 10), max_retries=retry)
    session = service._client.session
    session.mount(origin, adapter)
    settle_environment(session, url)
    return url


def settle_environment(session: requests.Session, url: str) -> None:
    """Read the environment's proxy and CA-bundle settings for `url` once, not on every send.

    With `trust_env` a requests session re-reads them for each request (scanning os.environ for
    *_proxy, no_proxy and REQUESTS_CA_BUNDLE, and stat-ing ~/.netrc): measured at 10-20% of
    hermes' CPU per send. The variables cannot change under a running process, so their values
    are copied onto the session and `trust_env` is switched off. `.netrc` is left out on purpose:
    its basic auth would replace the OAuth2 bearer token.
    """
    settings = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.trust_env = False


class FirebaseSender:
    """FcmSender over the real firebase-admin SDK; its blocking calls run in a thread pool."""

    def __init__(
        self,
        *,
        credentials_file: Path,
        fcm_url: str,
        concurrency: int,
        timeout_seconds: float = 30.0,
    ) -> None:
        certificate = credentials.Certificate(str(credentials_file))
        self.project_id: str = certificate.project_id
        # A named app of our own: never the default app another library in the process may use.
        self.app = firebase_admin.initialize_app(
            certificate,
            {"projectId": certificate.project_id, "httpTimeout": timeout_seconds},
            name=f"trakr-hermes-{uuid.uuid4().hex[:8]}",
        )
        self.send_url = point_sdk_at(self.app, fcm_url, pool_size=concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fcm-send")

    async def send(self, message: messaging.Message, *, dry_run: bool) -> str:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._send_blocking, message, dry_run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise classify(exc) from exc

    def _send_blocking(self, message: messaging.Message, dry_run: bool) -> str:
        return messaging.send(message, dry_run=dry_run, app=self.app)

    async def close(self) -> None:
        """Wait for sends still running in threads, then release the app (never blocks the loop)."""
        await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        self._pool.shutdown(wait=True)
        # delete_app closes the SDK's async client with asyncio.run(), so it must not run on
        # the event loop's thread.
        firebase_admin.delete_app(self.app)
