"""trakr-fcm-emulator through the real firebase-admin SDK (hermes' FirebaseSender) and raw HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fcm_emulator_helpers import Emulator, running_emulator, script
from firebase_admin import messaging
from trakr.fcm_emulator.app import TOKEN_PATH
from trakr.fcm_emulator.credentials import (
    fake_service_account,
    write_account,
    write_fake_credentials,
)
from trakr.hermes.fcm import FirebaseSender, SendError


def topic_message(topic: str = "rutgers-nb.198.spring.2026.01-111.05.09214") -> messaging.Message:
    return messaging.Message(
        topic=topic,
        notification=messaging.Notification(
            title="Section 05 of Intro has opened!", body="Index 09214"
        ),
        data={"topic": topic, "status": "OPEN", "notification_id": "7"},
    )


@pytest.fixture
async def sender(emulator: Emulator):
    sender = FirebaseSender(
        credentials_file=emulator.credentials, fcm_url=emulator.url, concurrency=4
    )
    yield sender
    await sender.close()


async def test_send_is_recorded_with_topic_payload_and_time(
    emulator: Emulator, sender: FirebaseSender
) -> None:
    before = time.time()
    name = await sender.send(topic_message(), dry_run=False)
    [recorded] = emulator.messages()
    assert name == recorded["name"] and name.startswith(f"projects/{emulator.project_id}/messages/")
    assert recorded["topic"] == "rutgers-nb.198.spring.2026.01-111.05.09214"
    assert recorded["notification"] == {
        "title": "Section 05 of Intro has opened!",
        "body": "Index 09214",
    }
    assert recorded["data"]["notification_id"] == "7"
    assert before <= recorded["received_at"] <= time.time()
    assert emulator.stats()["counts"]["tokens_issued"] == 1


async def test_validate_only_is_answered_but_not_recorded(
    emulator: Emulator, sender: FirebaseSender
) -> None:
    name = await sender.send(topic_message(), dry_run=True)
    assert name.endswith("/messages/fake_message_id")
    assert emulator.messages() == []
    assert emulator.stats()["counts"]["validated"] == 1


@pytest.mark.parametrize(
    ("faults", "code", "transient"),
    [
        ({"unavailable_rate": 1.0}, "UNAVAILABLE", True),
        ({"internal_rate": 1.0}, "INTERNAL", True),
        ({"rate_limit_rate": 1.0, "retry_after_seconds": 2}, "QUOTA_EXCEEDED", True),
        (
            {"invalid_topics": ["rutgers-nb.198.spring.2026.01-111.05.09214"]},
            "INVALID_ARGUMENT",
            False,
        ),
    ],
)
async def test_faults_reach_hermes_as_the_sdk_error_classes(
    emulator: Emulator, sender: FirebaseSender, faults: dict, code: str, transient: bool
) -> None:
    emulator.faults(**faults)
    with pytest.raises(SendError) as caught:
        await sender.send(topic_message(), dry_run=False)
    assert caught.value.code == code
    assert caught.value.transient is transient
    if code == "QUOTA_EXCEEDED":
        assert caught.value.retry_after_seconds == 2
        assert caught.value.rate_limited
    assert emulator.messages() == []


async def test_fault_rates_are_shares_and_seeded(
    emulator: Emulator, sender: FirebaseSender
) -> None:
    emulator.faults(unavailable_rate=0.5, seed=3)
    outcomes = []
    for _ in range(40):
        try:
            await sender.send(topic_message(), dry_run=False)
            outcomes.append("ok")
        except SendError as exc:
            outcomes.append(exc.code)
    assert 5 < outcomes.count("UNAVAILABLE") < 35
    assert len(emulator.messages()) == outcomes.count("ok")


async def test_delay_is_added_to_every_send(emulator: Emulator, sender: FirebaseSender) -> None:
    await sender.send(topic_message(), dry_run=False)  # token fetched outside the timing
    emulator.faults(delay_ms=200)
    started = time.perf_counter()
    await sender.send(topic_message(), dry_run=False)
    assert time.perf_counter() - started >= 0.2


async def test_other_project_is_a_sender_id_mismatch(emulator: Emulator, tmp_path: Path) -> None:
    other = write_fake_credentials(
        tmp_path / "other.json", token_uri=emulator.url + TOKEN_PATH, project_id="not-ours"
    )
    sender = FirebaseSender(credentials_file=other, fcm_url=emulator.url, concurrency=1)
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(topic_message(), dry_run=False)
    finally:
        await sender.close()
    assert caught.value.code == "SENDER_ID_MISMATCH"
    assert not caught.value.transient


async def test_token_signed_with_another_key_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    genuine = json.loads(emulator.credentials.read_text())
    impostor, _ = fake_service_account(
        token_uri=genuine["token_uri"], project_id=genuine["project_id"]
    )
    impostor["private_key_id"] = genuine[
        "private_key_id"
    ]  # claims the emulator's key, signs with another
    path = write_account(tmp_path / "impostor.json", impostor)
    sender = FirebaseSender(credentials_file=path, fcm_url=emulator.url, concurrency=1)
    try:
        with pytest.raises(SendError) as caught:
            await sender.send(topic_message(), dry_run=False)
    finally:
        await sender.close()
    assert caught.value.code == "AUTH_REFRESH_FAILED"
    assert emulator.messages() == []


def test_http_checks_like_fcm(emulator: Emulator) -> None:
    send_path = f"/v1/projects/{emulator.project_id}/messages:send"
    with emulator.client() as client:
        unauthenticated = client.post(send_path, json={"message": {"topic": "a"}})
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["error"]["status"] == "UNAUTHENTICATED"
        assert client.post(TOKEN_PATH, content=b"grant_type=password").status_code == 400
        # A token through the real grant, then the request checks FCM makes.
        account = json.loads(emulator.credentials.read_text())
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        credential = service_account.Credentials.from_service_account_info(
            account, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
        )
        credential.refresh(Request())
        headers = {"Authorization": f"Bearer {credential.token}"}
        bad_topic = client.post(
            send_path, headers=headers, json={"message": {"topic": "no spaces"}}
        )
        assert bad_topic.status_code == 400
        assert bad_topic.json()["error"]["details"][0]["errorCode"] == "INVALID_ARGUMENT"
        two_targets = client.post(
            send_path, headers=headers, json={"message": {"topic": "a", "token": "b"}}
        )
        assert two_targets.status_code == 400
        too_big = {"message": {"topic": "a", "data": {"blob": "x" * 4100}}}
        response = client.post(send_path, headers=headers, json=too_big)
        assert response.status_code == 400 and "too big" in response.json()["error"]["message"]
        just_fits = {"message": {"topic": "a", "data": {"blob": "x" * 4000}}}
        assert client.post(send_path, headers=headers, json=just_fits).status_code == 200
        emulator.faults(rate_limit_rate=1.0, retry_after_seconds=1.5)
        limited = client.post(send_path, headers=headers, json={"message": {"topic": "a"}})
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
        assert limited.json()["error"]["details"][0] == {
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": "QUOTA_EXCEEDED",
        }
        assert client.post("/faults", json={"unavailable_rate": 2}).status_code == 422


def test_messages_page_through_since_and_limit(emulator: Emulator) -> None:
    account = json.loads(emulator.credentials.read_text())
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    credential = service_account.Credentials.from_service_account_info(
        account, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
    )
    credential.refresh(Request())
    with emulator.client() as client:
        for i in range(5):
            client.post(
                f"/v1/projects/{emulator.project_id}/messages:send",
                headers={"Authorization": f"Bearer {credential.token}"},
                json={"message": {"topic": f"t{i}"}},
            ).raise_for_status()
        first = client.get("/messages", params={"limit": 2}).json()
        assert [m["topic"] for m in first["messages"]] == ["t0", "t1"]
        rest = client.get("/messages", params={"since": first["last_seq"]}).json()
        assert [m["topic"] for m in rest["messages"]] == ["t2", "t3", "t4"]
        assert client.get("/messages", params={"topic": "t3"}).json()["count"] == 1
        assert client.delete("/messages").json() == {"cleared": 5}
        assert client.get("/messages", params={"since": rest["last_seq"]}).json()["messages"] == []


def test_help_and_credentials_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [script("trakr-fcm-emulator"), "--help"], capture_output=True, text=True, check=True
    )
    assert "--credentials-out" in result.stdout and "/faults" in result.stdout
    path = write_fake_credentials(
        tmp_path / "c.json", token_uri="http://127.0.0.1:1/token", project_id="p"
    )
    account = json.loads(path.read_text())
    assert account["type"] == "service_account" and account["project_id"] == "p"
    assert account["token_uri"] == "http://127.0.0.1:1/token"
    assert account["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert path.stat().st_mode & 0o777 == 0o600
    assert httpx.URL(account["token_uri"]).port == 1


def test_sigterm_after_a_request_exits_0(tmp_path: Path) -> None:
    """A clean shutdown is exit 0, not death by the signal uvicorn would re-raise (-15)."""
    with running_emulator(tmp_path) as emulator:
        with emulator.client() as client:
            assert client.get("/stats").status_code == 200
        emulator.proc.send_signal(signal.SIGTERM)
        assert emulator.proc.wait(timeout=10) == 0
    assert '"emulator_stopped"' in (tmp_path / "fcm-emulator.log").read_text()


def test_send_endpoint_errors_are_counted_and_other_methods_are_not_sends(
    emulator: Emulator,
) -> None:
    """The send endpoint is served in front of FastAPI: its errors still reach /stats, and only
    POST is a send."""
    account = json.loads(emulator.credentials.read_text())
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    credential = service_account.Credentials.from_service_account_info(
        account, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
    )
    credential.refresh(Request())
    send_path = f"/v1/projects/{emulator.project_id}/messages:send"
    headers = {"Authorization": f"Bearer {credential.token}"}
    with emulator.client() as client:
        not_json = client.post(send_path, headers=headers, content=b"{not json")
        assert not_json.status_code == 400
        assert not_json.json()["error"]["status"] == "INVALID_ARGUMENT"
        other = client.post(
            "/v1/projects/someone-else/messages:send",
            headers=headers,
            json={"message": {"topic": "a"}},
        )
        assert other.status_code == 403
        assert client.get(send_path, headers=headers).status_code in (404, 405)
    counts = emulator.stats()["counts"]
    assert counts["requests"] == 2
    assert counts["error:INVALID_ARGUMENT"] == 1
    assert counts["error:SENDER_ID_MISMATCH"] == 1
    assert emulator.messages() == []
