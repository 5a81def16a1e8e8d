"""trakr-fcm-emulator: a local stand-in for FCM (HTTP v1 send + OAuth2 token) for tests and the demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys

import uvicorn

from trakr.asgi import serve_until_stopped
from trakr.cli import HelpFormatter, fail
from trakr.errors import ConfigError
from trakr.fcm_emulator.app import TOKEN_PATH, EmulatorState, create_app
from trakr.fcm_emulator.credentials import fake_service_account, write_account
from trakr.logs import configure_logging
from trakr.runtime import install_stop_signals
from trakr.settings import Settings

logger = logging.getLogger("trakr.fcm_emulator")

DESCRIPTION = """\
A small FCM look-alike. It serves the OAuth2 token endpoint a service-account credential calls
(POST /token) and POST /v1/projects/{project}/messages:send with FCM's request, response and
error shapes, so the real firebase-admin SDK can talk to it. Every accepted message is recorded:
GET /messages?since=SEQ&limit=N&topic=T lists them (each with topic, notification, data and
received_at), DELETE /messages clears them, GET /stats counts requests, tokens and faults.
POST /faults makes it fail on purpose, e.g.
  {"unavailable_rate": 0.3, "rate_limit_rate": 0.1, "retry_after_seconds": 1,
   "internal_rate": 0, "invalid_topics": ["a.b"], "delay_ms": 50, "seed": 1}
and DELETE /faults stops that. --credentials-out writes a throw-away service-account file (fresh
RSA key, token_uri pointing here) to use as TRAKR_FCM_CREDENTIALS, with TRAKR_FCM_URL set to
http://HOST:PORT. Never a real key; never for production.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trakr-fcm-emulator", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="port, 0 for any free one (TRAKR_FCM_EMULATOR_PORT; default 9190)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--project-id", default="trakr-demo", help="the FCM project it pretends to be"
    )
    parser.add_argument(
        "--credentials-out",
        metavar="FILE",
        help="write a throw-away service-account JSON for this emulator",
    )
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML settings file")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at DEBUG (TRAKR_LOG_LEVEL)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(args.config, **({"log_level": "DEBUG"} if args.verbose else {}))
    except ConfigError as exc:
        fail(str(exc), code=2)
    port = settings.fcm_emulator_port if args.port is None else args.port
    configure_logging("fcm-emulator", settings.log_level)
    # Bind first so that --port 0 works and the credentials name the real port.
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without it
    # every keep-alive response waits ~40 ms for the client's delayed ACK.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, port))
    except OSError as exc:
        fail(f"cannot listen on {args.host}:{port}: {exc.strerror}")
    sock.listen(1024)
    port = sock.getsockname()[1]
    base_url = f"http://{args.host}:{port}"
    state = EmulatorState(project_id=args.project_id)
    if args.credentials_out:
        account, public_pem = fake_service_account(
            token_uri=base_url + TOKEN_PATH, project_id=args.project_id
        )
        state.trust_key(account["private_key_id"], public_pem)
        path = write_account(args.credentials_out, account)
        logger.info(
            "wrote throw-away credentials to %s", path, extra={"event": "credentials_written"}
        )
    logger.info(
        "FCM emulator on %s (project %s)",
        base_url,
        args.project_id,
        extra={"event": "emulator_started", "port": port, "url": base_url},
    )
    sys.stdout.flush()
    config = uvicorn.Config(
        create_app(args.project_id, state=state), log_config=None, access_log=False, lifespan="off"
    )
    try:
        # uvicorn's loop choice (uvloop when installed), as uvicorn.Server.run would make it.
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(_serve(config, sock))
    except KeyboardInterrupt:
        raise SystemExit(1) from None
    logger.info("FCM emulator stopped", extra={"event": "emulator_stopped"})


async def _serve(config: uvicorn.Config, sock: socket.socket) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully (exit 0, not -15)."""
    await serve_until_stopped(config, install_stop_signals(), sockets=[sock])


if __name__ == "__main__":
    main()
