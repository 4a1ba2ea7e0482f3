"""The application factory: settings in, a Starlette app out. No engine or settings exist at import time."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from db.crypto import Keyring
from db.engine import make_engine
from db.errors import DomainError
from db.keyfile import FileKeyring
from db.keyholders import holder_name
from db.passwords import make_hasher
from web import (
    errors,
    guards,
    outbox,
    signed_in,
    timeout,
    unavailable,
)
from web.config import Settings, load_settings
from web.cookies import CookieSession
from web.hashing import HashPool
from web.protect import RequestGuard, SecurityHeaders
from web.routes import routes
from web.templating import make_templates


def reader(engine: Engine) -> Engine:
    """Where the one read of a signed-in request runs. On PostgreSQL outside a transaction, which saves the
    BEGIN and ROLLBACK round trips around it; SQLite has none to save, and switching its mode costs more."""
    return engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine


def keyring_for(settings: Settings) -> Keyring:
    """The key file's keyring (re-read when the file changes), or the fixed keys of MFA_ENCRYPTION_KEYS."""
    return FileKeyring(settings.keys_path) if settings.keys_path else Keyring(settings.mfa_keys)


def hasher_for(settings: Settings) -> PasswordHasher:
    return make_hasher(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    settings = settings or load_settings()
    app = Starlette(
        debug=settings.debug,
        lifespan=outbox.lifespan,
        routes=routes(),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(CookieSession, secret_key=settings.secret_key, max_age=settings.absolute_timeout),
            Middleware(RequestGuard, max_body=settings.max_body, refuse=errors.refused),
        ],
        exception_handlers={
            HTTPException: errors.http_error,
            500: errors.server_error,
            DomainError: errors.domain_error,
            signed_in.NotSignedIn: errors.not_signed_in,
            signed_in.SecondStepRequired: errors.second_step_required,
            signed_in.EnrolmentRequired: errors.enrolment_required,
            guards.ReauthRequired: errors.reauth_required,
            DBAPIError: unavailable.database_unavailable,
        },
    )
    # Starlette's slash redirect copies the Host header into Location; /team/ is simply not found.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url)
    app.state.reader = reader(app.state.engine)
    app.state.keyring = keyring_for(settings)  # one per app: the reports of db/keyholders.py describe this one
    app.state.key_holder = holder_name()
    app.state.templates = make_templates(settings.app_name, debug=settings.debug, session_timer=timeout.session_timer)
    app.state.hasher = hasher_for(settings)
    app.state.hash_pool = HashPool(settings.hashes_at_once)
    return app
