"""The emulator's HTTP app: Google's OAuth2 token endpoint and the FCM HTTP v1 send endpoint.

It answers the way FCM does as far as firebase-admin can tell: the same request and response
shapes, errors in Google's JSON error format with an `FcmError` detail (which is how the SDK
picks QuotaExceededError, SenderIdMismatchError, …), Retry-After on 429. Everything accepted
(and not `validate_only`) is recorded with its receive time for `GET /messages`.

The send endpoint is served by a bare ASGI handler in front of the FastAPI app, which serves
the rest (token, control API). The send endpoint is what a benchmark hammers, and the emulator
shares the benchmark machine's cores with hermes: FastAPI's routing, dependency solving and
middleware were most of its CPU per send.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from trakr.fcm_emulator.faults import Fault, FaultConfig, FaultInjector

logger = logging.getLogger(__name__)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/token"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
TOKEN_LIFETIME_SECONDS = 3600
# FCM's own limits: topic charset (the SDK checks it too) and the 4 KiB message payload.
TOPIC_PATTERN = re.compile(r"^[a-zA-Z0-9\-_.~%]+$")
MAX_PAYLOAD_BYTES = 4096
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
TARGET_FIELDS = ("token", "topic", "condition")
SEND_PATH = re.compile(r"^/v1/projects/([^/]+)/messages:send$")


@dataclass
class EmulatorState:
    """Everything the emulator remembers; one instance per app."""

    project_id: str
    public_keys: dict[str, RSAPublicKey] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    faults: FaultInjector = field(default_factory=FaultInjector)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def trust_key(self, key_id: str, public_pem: bytes) -> None:
        """Verify the signature of assertions carrying this key id (keys the emulator wrote)."""
        key = serialization.load_pem_public_key(public_pem)
        if isinstance(key, RSAPublicKey):
            self.public_keys[key_id] = key


class GoogleError(Exception):
    """An error answered in Google's JSON format."""

    def __init__(
        self,
        http_status: int,
        status: str,
        message: str,
        *,
        error_code: str | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status = status
        self.message = message
        self.error_code = error_code
        self.retry_after_seconds = retry_after_seconds

    @classmethod
    def from_fault(cls, fault: Fault) -> GoogleError:
        return cls(
            fault.http_status,
            fault.status,
            fault.message,
            error_code=fault.error_code,
            retry_after_seconds=fault.retry_after_seconds,
        )

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {
            "code": self.http_status,
            "message": self.message,
            "status": self.status,
        }
        if self.error_code:
            error["details"] = [{"@type": FCM_ERROR_TYPE, "errorCode": self.error_code}]
        headers = {}
        if self.retry_after_seconds is not None:
            # The header carries whole seconds (RFC 9110); round up so clients never come early.
            headers["Retry-After"] = str(max(0, int(-(-self.retry_after_seconds // 1))))
        return JSONResponse({"error": error}, status_code=self.http_status, headers=headers)


def create_app(project_id: str = "trakr-demo", *, state: EmulatorState | None = None) -> ASGIApp:
    """The emulator app for one project: the send endpoint in front of the FastAPI app."""
    state = state or EmulatorState(project_id=project_id)
    app = FastAPI(title="trakr FCM emulator", description=__doc__)
    app.state.emulator = state

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "project_id": state.project_id}

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> JSONResponse:
        """OAuth2 token endpoint for the JWT-bearer grant a service-account credential uses."""
        form = parse_qs((await request.body()).decode())
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        if grant != JWT_BEARER_GRANT or not assertion:
            return _oauth_error("unsupported_grant_type", "expected a jwt-bearer assertion")
        problem = _check_assertion(state, assertion, token_uri=str(request.url))
        if problem:
            return _oauth_error("invalid_grant", problem)
        access_token = "emu-" + secrets.token_urlsafe(24)
        state.tokens[access_token] = time.time() + TOKEN_LIFETIME_SECONDS
        state.counts["tokens_issued"] += 1
        return JSONResponse(
            {
                "access_token": access_token,
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "token_type": "Bearer",
            }
        )

    @app.get("/messages")
    async def list_messages(
        since: int = 0, limit: int = 10_000, topic: str | None = None
    ) -> dict[str, Any]:
        """Recorded messages with seq > `since` (oldest first); poll with since=<last seq seen>."""
        # seq is 1-based and contiguous, so the start index is found without a scan.
        selected = state.messages[max(0, since - _first_seq(state) + 1) :] if state.messages else []
        if topic is not None:
            selected = [m for m in selected if m["topic"] == topic]
        page = selected[: max(0, limit)]
        last = page[-1]["seq"] if page else since
        return {
            "messages": page,
            "count": len(page),
            "last_seq": last,
            "total": len(state.messages),
        }

    @app.delete("/messages")
    async def clear_messages() -> dict[str, Any]:
        cleared = len(state.messages)
        state.messages.clear()
        state.counts.clear()
        return {"cleared": cleared}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "recorded": len(state.messages),
            "counts": dict(state.counts),
            "faults": state.faults.config.model_dump(),
        }

    @app.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return state.faults.config.model_dump()

    @app.post("/faults")
    async def set_faults(request: Request) -> Response:
        try:
            config = FaultConfig.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return JSONResponse({"detail": json.loads(exc.json())}, status_code=422)
        state.faults.configure(config)
        logger.info("faults set: %s", config.model_dump(), extra={"event": "faults_set"})
        return JSONResponse(config.model_dump())

    @app.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        state.faults.configure(FaultConfig())
        return state.faults.config.model_dump()

    return SendEndpoint(app, state)


class SendEndpoint:
    """POST /v1/projects/{project}/messages:send as a bare ASGI handler; anything else goes on to
    the FastAPI app."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = SEND_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more_body = message.get("more_body", False)
        authorization = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"authorization"
            ),
            "",
        )
        try:
            response = await accept_send(self.state, match.group(1), authorization, bytes(body))
        except GoogleError as exc:
            self.state.counts[f"error:{exc.error_code or exc.status}"] += 1
            response = exc.response()
        await response(scope, receive, send)


async def accept_send(
    state: EmulatorState, project: str, authorization: str, body: bytes
) -> JSONResponse:
    """FCM HTTP v1 send: validate, maybe inject a fault, record, answer the message name."""
    received_at = time.time()
    state.counts["requests"] += 1
    _check_bearer(state, authorization)
    if project != state.project_id:
        raise GoogleError(
            403,
            "PERMISSION_DENIED",
            f"project {project} is not this emulator's ({state.project_id})",
            error_code="SENDER_ID_MISMATCH",
        )
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise GoogleError(400, "INVALID_ARGUMENT", f"invalid JSON payload: {exc}") from exc
    message, validate_only = _check_send_body(payload)
    topic = message.get("topic")
    config = state.faults.config
    if config.delay_ms:
        await asyncio.sleep(config.delay_ms / 1000)
    fault = state.faults.draw(topic)
    if fault is not None:
        state.counts["faults_injected"] += 1
        raise GoogleError.from_fault(fault)
    if validate_only:
        state.counts["validated"] += 1
        # What FCM answers to a dry run.
        return JSONResponse({"name": f"projects/{project}/messages/fake_message_id"})
    name = f"projects/{project}/messages/{next(state._ids)}"
    state.messages.append(
        {
            "seq": next(state._seq),
            "name": name,
            "topic": topic,
            "token": message.get("token"),
            "condition": message.get("condition"),
            "notification": message.get("notification"),
            "data": message.get("data"),
            "android": message.get("android"),
            "apns": message.get("apns"),
            "received_at": received_at,
        }
    )
    state.counts["accepted"] += 1
    return JSONResponse({"name": name})


def _first_seq(state: EmulatorState) -> int:
    return int(state.messages[0]["seq"])


def _oauth_error(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _check_assertion(state: EmulatorState, assertion: str, *, token_uri: str) -> str | None:
    """Why the JWT assertion is unacceptable, or None. Signatures are checked for known keys."""
    try:
        header_b64, claims_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64url(header_b64))
        claims = json.loads(_b64url(claims_b64))
        signature = _b64url(signature_b64)
    except (ValueError, binascii.Error):
        return "assertion is not a JWT"
    if header.get("alg") != "RS256":
        return "assertion must be RS256-signed"
    # google-auth always names Google's token endpoint as the audience, whatever token_uri says.
    if claims.get("aud") not in (token_uri, GOOGLE_TOKEN_AUDIENCE):
        return f"assertion audience {claims.get('aud')!r} is not {token_uri!r}"
    if not claims.get("iss") or float(claims.get("exp", 0)) < time.time():
        return "assertion has no issuer or has expired"
    key = state.public_keys.get(str(header.get("kid")))
    if key is not None:
        try:
            key.verify(
                signature,
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return "assertion signature does not match the key"
    return None


def _check_bearer(state: EmulatorState, authorization: str) -> None:
    scheme, _, token = authorization.partition(" ")
    expires = state.tokens.get(token) if scheme.lower() == "bearer" else None
    if expires is None or expires < time.time():
        raise GoogleError(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        )


def _check_send_body(body: Any) -> tuple[dict[str, Any], bool]:
    """The message and validate_only flag of a send request, or a GoogleError like FCM's."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise GoogleError(400, "INVALID_ARGUMENT", "Request contains an invalid argument: message")
    message: dict[str, Any] = body["message"]
    validate_only = body.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise GoogleError(400, "INVALID_ARGUMENT", "validate_only must be a boolean")
    targets = [name for name in TARGET_FIELDS if message.get(name)]
    if len(targets) != 1:
        raise GoogleError(
            400,
            "INVALID_ARGUMENT",
            "Exactly one of token, topic or condition must be set",
            error_code="INVALID_ARGUMENT",
        )
    topic = message.get("topic")
    if topic is not None and (not isinstance(topic, str) or not TOPIC_PATTERN.match(topic)):
        raise GoogleError(
            400, "INVALID_ARGUMENT", f"Invalid topic name: {topic!r}", error_code="INVALID_ARGUMENT"
        )
    data = message.get("data") or {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise GoogleError(
            400, "INVALID_ARGUMENT", "data values must be strings", error_code="INVALID_ARGUMENT"
        )
    # FCM limits the payload a device receives (notification + data + platform blocks) to 4 KiB;
    # the target and options are addressing, not payload.
    payload = {k: v for k, v in message.items() if k not in (*TARGET_FIELDS, "fcm_options", "name")}
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise GoogleError(
            400,
            "INVALID_ARGUMENT",
            f"Message is too big: {size} bytes (limit {MAX_PAYLOAD_BYTES})",
            error_code="INVALID_ARGUMENT",
        )
    return message, validate_only
