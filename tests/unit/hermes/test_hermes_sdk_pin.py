"""Pins the firebase-admin internals hermes.fcm.point_sdk_at relies on (the one place it reaches in).

If an SDK upgrade moves the send URL constant, the instance attribute send() posts to, or the
requests session the adapter is mounted on, these fail loudly — before hermes silently sends
to Google instead of TRAKR_FCM_URL (or the other way round).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import firebase_admin
import pytest
import requests
from firebase_admin import credentials, messaging
from trakr.fcm_emulator.credentials import write_fake_credentials
from trakr.hermes.fcm import GOOGLE_FCM_ORIGIN, point_sdk_at


@pytest.fixture
def app(tmp_path: Path) -> Iterator[firebase_admin.App]:
    path = write_fake_credentials(
        tmp_path / "sa.json", token_uri="http://127.0.0.1:9/token", project_id="pin"
    )
    app = firebase_admin.initialize_app(
        credentials.Certificate(str(path)), {"projectId": "pin"}, name="sdk-pin"
    )
    yield app
    firebase_admin.delete_app(app)


def test_the_send_url_is_still_built_from_the_class_constant(app: firebase_admin.App) -> None:
    assert (
        messaging._MessagingService.FCM_URL == GOOGLE_FCM_ORIGIN + "/v1/projects/{0}/messages:send"
    )
    service = messaging._get_messaging_service(app)
    assert service._fcm_url == f"{GOOGLE_FCM_ORIGIN}/v1/projects/pin/messages:send"
    # send() posts to the instance attribute (not to the constant or a fresh format of it).
    assert "url=self._fcm_url" in inspect.getsource(messaging._MessagingService.send)
    assert "_get_messaging_service(app).send(message, dry_run)" in inspect.getsource(messaging.send)
    assert isinstance(service._client.session, requests.Session)


def test_point_sdk_at_moves_only_this_apps_url_and_mounts_a_sized_pool(
    app: firebase_admin.App,
) -> None:
    url = point_sdk_at(app, "http://127.0.0.1:9190/", pool_size=64)
    service = messaging._get_messaging_service(app)
    assert url == service._fcm_url == "http://127.0.0.1:9190/v1/projects/pin/messages:send"
    adapter = service._client.session.get_adapter(url)
    assert adapter._pool_maxsize == 64
    assert adapter.max_retries.status == 0 and adapter.max_retries.read == 0
    # The class constant is untouched: other apps in the process still talk to Google.
    assert messaging._MessagingService.FCM_URL.startswith(GOOGLE_FCM_ORIGIN)


def test_default_url_takes_the_same_path(app: firebase_admin.App) -> None:
    url = point_sdk_at(app, GOOGLE_FCM_ORIGIN, pool_size=8)
    assert url == f"{GOOGLE_FCM_ORIGIN}/v1/projects/pin/messages:send"


def test_the_environment_is_read_once_at_startup(
    app: firebase_admin.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxy and CA-bundle variables still apply; the session just stops re-reading them."""
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ours.pem")
    url = point_sdk_at(app, GOOGLE_FCM_ORIGIN, pool_size=8)
    session = messaging._get_messaging_service(app)._client.session
    assert session.trust_env is False
    settings = session.merge_environment_settings(url, {}, None, None, None)
    assert settings["proxies"]["https"] == "http://proxy.invalid:3128"
    assert settings["verify"] == "/etc/ssl/certs/ours.pem"


def test_a_proxy_bypassed_for_the_fcm_host_stays_bypassed(
    app: firebase_admin.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    point_sdk_at(app, "http://127.0.0.1:9190", pool_size=8)
    assert "https" not in messaging._get_messaging_service(app)._client.session.proxies
