"""trakr-hermes: send every notification to its FCM topic, once, and record the delivery."""

from __future__ import annotations

import argparse

from trakr.cli import load_settings, make_parser, run_service
from trakr.hermes.metrics import DEFAULT_METRICS_PORT
from trakr.hermes.service import run

DESCRIPTION = """\
Consumes the notification stream (<namespace>:notifications, consumer group "hermes") that julia
fills, and sends one FCM topic message per notification with the firebase-admin SDK ("Section 05
of Intro to Computer Science has opened!"). Each outcome is written to the delivery table (and
notification.state) before the stream entry is acknowledged; a notification with a recorded
delivery is never sent again. Transient FCM errors (UNAVAILABLE, INTERNAL, QUOTA_EXCEEDED/429,
network) are retried with backoff and jitter, honouring Retry-After and pacing each rate-limited
topic; permanent ones (INVALID_ARGUMENT, SENDER_ID_MISMATCH, UNREGISTERED, ...) are recorded as
failed at once, and so are transient ones after TRAKR_HERMES_MAX_ATTEMPTS attempts.

FCM endpoint and credentials: TRAKR_FCM_URL (default https://fcm.googleapis.com; point it at
trakr-fcm-emulator locally) and TRAKR_FCM_CREDENTIALS (service-account JSON; falls back to
GOOGLE_APPLICATION_CREDENTIALS). Tuning: TRAKR_HERMES_CONCURRENCY (sends in flight),
TRAKR_HERMES_MAX_ATTEMPTS, TRAKR_HERMES_CLAIM_IDLE_SECONDS (take over a dead consumer's entries
after this long), TRAKR_HERMES_BLOCK_SECONDS, TRAKR_SHUTDOWN_GRACE_SECONDS.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("trakr-hermes", DESCRIPTION, metrics_port=DEFAULT_METRICS_PORT)
    parser.add_argument(
        "-d",
        "--dry-run",
        action="store_true",
        default=None,
        help="send with validate_only through consumer group 'hermes-dry-run': FCM checks every "
        "message, nothing is delivered, recorded, or taken from the real group (TRAKR_HERMES_DRY_RUN)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings(args, hermes_dry_run=args.dry_run)
    raise SystemExit(run_service("hermes", settings, run))


if __name__ == "__main__":
    main()
