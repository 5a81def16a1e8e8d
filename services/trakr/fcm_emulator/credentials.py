"""Throw-away service-account files for the emulator: a fresh RSA key each time, never a real one."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FAKE_CLIENT_DOMAIN = "trakr-fcm-emulator.invalid"


def fake_service_account(*, token_uri: str, project_id: str) -> tuple[dict[str, Any], bytes]:
    """A service-account dict with a freshly generated key, and that key's public half (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = uuid.uuid4().hex
    account = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": f"hermes@{project_id}.{FAKE_CLIENT_DOMAIN}",
        "client_id": str(uuid.uuid4().int)[:21],
        "auth_uri": token_uri,
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "",
        "client_x509_cert_url": "",
        "universe_domain": "googleapis.com",
    }
    return account, public_pem


def write_fake_credentials(path: str | Path, *, token_uri: str, project_id: str) -> Path:
    """Write a throw-away service-account JSON file (mode 0600) whose token_uri is the emulator's."""
    account, _ = fake_service_account(token_uri=token_uri, project_id=project_id)
    return write_account(path, account)


def write_account(path: str | Path, account: dict[str, Any]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Even a throw-away key is a private key: keep it unreadable to other users.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(account, handle, indent=2)
    return target
