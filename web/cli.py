"""The operator's command line: `python -m web <command>`. Exit status 0 on success, 1 with a message on
standard error otherwise, so scripts can rely on it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlmodel import Session

from db import events, links, mfa, migrate, roster, users
from db.engine import make_engine, open_session
from db.errors import DomainError
from db.events import OPERATOR
from db.models import ROLES
from web import cli_keys
from web.app import hasher_for
from web.config import Settings, load_settings
from web.outbox import deliver_now


class Failure(Exception):
    """A message for the operator, and exit status 1."""


def _session(settings: Settings) -> Session:
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    return open_session(engine)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    migrate.upgrade(make_engine(settings.database_url))
    print("Database is up to date.")


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> None:
    password = None
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    with _session(settings) as session:
        try:
            user = users.create_user(
                session,
                email=args.email,
                role=args.role,
                password=password,
                hasher=hasher_for(settings),
                actor=OPERATOR,
            )
        except DomainError as exc:
            raise Failure(f"{exc.field}: {exc.message}") from exc
        print(f"Created {user.role} {user.email}.")
        if password is None:
            token = links.issue_set_password_link(session, user=user)
            print(f"One-time link to choose a password: {base_url(settings)}/set-password/{token}")


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as session:
        for row in roster.list_members(session):
            mfa_state = "mfa=on" if row.mfa_enabled else "mfa=off"
            locked = " locked" if row.locked_until else ""
            print(f"{row.user.email}\t{row.user.role}\t{mfa_state}\tbackup_codes={row.codes_left}{locked}")


def cmd_user_reset_mfa(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as session:
        user = users.find_user(session, email=args.email)
        if user is None:
            raise Failure(f"No member with the email {args.email!r}.")
        mfa.reset_mfa(session, user=user, actor=OPERATOR, reason=args.reason)
    deliver_now(settings, make_engine(settings.database_url))
    print(f"Reset multi-factor authentication for {user.email}; their sessions have ended.")


def cmd_events_prune(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as session:
        count = events.prune(session, older_than_days=settings.event_retention_days)
    print(f"Deleted {count} security-log entries older than {settings.event_retention_days} days.")


def cmd_setup_link(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as session:
        token = links.issue_setup_token(session)
    print(setup_message(settings, token))


def base_url(settings: Settings) -> str:
    """Links are built from PUBLIC_URL, never from a request's Host header."""
    return settings.public_url


def setup_message(settings: Settings, token: str | None) -> str:
    if token is None:
        return "This instance already has members; no set-up link is needed."
    return f"Create the first admin account with this one-time link: {base_url(settings)}/setup/{token}"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import os

    import uvicorn

    from web.redact import log_config
    from web.serving import NoDelayHttpToolsProtocol

    # Every worker reads WEB_CONCURRENCY (as uvicorn does), so each hashes passwords on its share of the cores.
    workers = args.workers or settings.web_concurrency
    os.environ["WEB_CONCURRENCY"] = str(workers)
    with _session(settings) as session:
        token = links.issue_setup_token(session)
    if token:
        print(setup_message(settings, token), flush=True)
    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        proxy_headers=True,
        http=NoDelayHttpToolsProtocol,
        loop="uvloop",
        log_level="warning" if args.quiet else "info",
        log_config=log_config(),
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m web", description="Chat360 account security operations.")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    serve = commands.add_parser("serve", help="migrate, print the set-up link if needed, and serve")
    serve.add_argument("--workers", type=int, default=0, help="worker processes (default: WEB_CONCURRENCY or 1)")
    serve.add_argument("--quiet", action="store_true")
    serve.set_defaults(run=cmd_serve)
    commands.add_parser("setup-link", help="print a one-time link that creates the first admin").set_defaults(
        run=cmd_setup_link
    )
    user = commands.add_parser("user", help="manage members").add_subparsers(dest="action", required=True)
    create = user.add_parser("create", help="create a member")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    create.set_defaults(run=cmd_user_create)
    user.add_parser("list", help="list members").set_defaults(run=cmd_user_list)
    reset = user.add_parser("reset-mfa", help="remove a member's second factor (lost device)")
    reset.add_argument("--email", required=True)
    reset.add_argument("--reason", default="lost device (operator)")
    reset.set_defaults(run=cmd_user_reset_mfa)
    cli_keys.register(commands, _session)
    log = commands.add_parser("events", help="the security log").add_subparsers(dest="action", required=True)
    log.add_parser("prune", help="delete entries older than EVENT_RETENTION_DAYS").set_defaults(run=cmd_events_prune)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(load_settings(), args)
    except (Failure, cli_keys.Refused, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
