"""The URL map: every route by name (templates and redirects use the names, never literal paths), one path
family per feature, and the earlier addresses that forward to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.convertors import register_url_convertor
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from web import (
    account,
    activity,
    admin,
    auth,
    care,
    links,
    mfa,
    passkeys,
    preferences,
    sensitive,
    sessions,
    timeout,
)
from web.safety import RowId
from web.templating import STATIC, url_path

register_url_convertor("rowid", RowId())


class ImmutableStatic(StaticFiles):
    """Static files are fingerprinted (`?v=<hash>`), so they may be cached for a year."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def routes() -> list[Route | Mount]:
    mfa_ = "/settings/mfa"
    return [
        Route("/healthz", account.healthz, name="healthz"),
        Route("/", account.show_dashboard, name="show_dashboard"),
        Route("/policy-banner/dismiss", account.dismiss_policy_banner, methods=["POST"], name="dismiss_policy_banner"),
        Route("/notices/dismiss", account.dismiss_notices, methods=["POST"], name="dismiss_notices"),
        Route("/login", auth.show_login, methods=["GET"], name="show_login"),
        Route("/login", auth.sign_in, methods=["POST"], name="sign_in"),
        Route("/login/verify", auth.show_second_step, methods=["GET"], name="show_second_step"),
        Route("/login/verify", auth.verify_second_step, methods=["POST"], name="verify_second_step"),
        Route("/login/passkey", passkeys.sign_in_with_passkey, methods=["POST"], name="sign_in_with_passkey"),
        Route("/logout", auth.sign_out, methods=["POST"], name="sign_out"),
        Route("/session/extend", timeout.extend_session, methods=["POST"], name="extend_session"),
        Route("/reauth", auth.show_reauth, methods=["GET"], name="show_reauth"),
        Route("/reauth", auth.reauthenticate, methods=["POST"], name="reauthenticate"),
        Route("/setup/{token}", links.show_setup, methods=["GET"], name="show_setup"),
        Route("/setup/{token}", links.claim_instance, methods=["POST"], name="claim_instance"),
        Route("/set-password/{token}", links.show_set_password, methods=["GET"], name="show_set_password"),
        Route("/set-password/{token}", links.set_password, methods=["POST"], name="set_password"),
        Route("/settings", account.show_settings, methods=["GET"], name="show_settings"),
        Route("/settings/password", account.change_password, methods=["POST"], name="change_password"),
        Route("/settings/language", preferences.save_language, methods=["POST"], name="save_language"),
        Route("/settings/sessions/revoke", sessions.sign_out_others, methods=["POST"], name="sign_out_others"),
        Route(
            "/settings/sessions/{id:rowid}/sign-out",
            sessions.sign_out_session,
            methods=["POST"],
            name="sign_out_session",
        ),
        Route("/settings/browsers/{id:rowid}/forget", sessions.forget_browser, methods=["POST"], name="forget_browser"),
        Route(f"{mfa_}/totp", mfa.show_totp, methods=["GET"], name="show_totp"),
        Route(f"{mfa_}/totp/enable", mfa.start_totp, methods=["POST"], name="start_totp"),
        Route(f"{mfa_}/totp/cancel", mfa.cancel_totp, methods=["POST"], name="cancel_totp"),
        Route(f"{mfa_}/totp/confirm", mfa.confirm_totp, methods=["POST"], name="confirm_totp"),
        Route(f"{mfa_}/totp/disable", mfa.disable_totp, methods=["POST"], name="disable_totp"),
        Route(
            f"{mfa_}/backup-codes/regenerate",
            mfa.regenerate_recovery_codes,
            methods=["POST"],
            name="regenerate_recovery_codes",
        ),
        *passkey_routes(f"{mfa_}/passkeys"),
        Route(f"{mfa_}/backup-codes/saved", care.confirm_codes_saved, methods=["POST"], name="confirm_codes_saved"),
        Route(f"{mfa_}/checkup", care.show_checkup, methods=["GET"], name="show_checkup"),
        Route(f"{mfa_}/checkup", care.complete_checkup, methods=["POST"], name="complete_checkup"),
        Route("/settings/webhooks", sensitive.show_webhooks, methods=["GET"], name="show_webhooks"),
        Route("/settings/webhooks", sensitive.add_webhook, methods=["POST"], name="add_webhook"),
        Route(
            "/settings/webhooks/{id:rowid}/toggle", sensitive.toggle_webhook, methods=["POST"], name="toggle_webhook"
        ),
        Route(
            "/settings/webhooks/{id:rowid}/delete", sensitive.delete_webhook, methods=["POST"], name="delete_webhook"
        ),
        Route("/settings/billing", sensitive.show_billing, methods=["GET"], name="show_billing"),
        Route("/settings/billing", sensitive.save_billing, methods=["POST"], name="save_billing"),
        Route("/team", admin.show_team, methods=["GET"], name="show_team"),
        Route("/team/members", admin.add_member, methods=["POST"], name="add_member"),
        Route("/team/policy", admin.save_policy, methods=["POST"], name="save_policy"),
        Route("/team/{id:rowid}/role", admin.change_role, methods=["POST"], name="change_role"),
        Route("/team/{id:rowid}/reset-mfa", admin.reset_mfa, methods=["POST"], name="reset_mfa"),
        Route("/team/{id:rowid}/unlock", admin.unlock_member, methods=["POST"], name="unlock_member"),
        Route("/team/{id:rowid}/remove", admin.remove_member, methods=["POST"], name="remove_member"),
        Route("/activity", activity.show_activity, methods=["GET"], name="show_activity"),
        Route("/activity.csv", activity.export_activity, methods=["GET"], name="export_activity"),
        *moved(
            {
                "/mfa/totp/activate": "start_totp",
                "/mfa/totp/cancel": "cancel_totp",
                "/mfa/totp/confirm": "confirm_totp",
                "/mfa/totp/disable": "disable_totp",
                "/mfa/recovery-codes/regenerate": "regenerate_recovery_codes",
            }
        ),
        Mount("/static", app=GZipMiddleware(ImmutableStatic(directory=STATIC)), name="static"),
    ]


def passkey_routes(base: str) -> list[Route]:
    return [
        Route(base, passkeys.show_passkeys, methods=["GET"], name="show_passkeys"),
        Route(base, passkeys.add_passkey, methods=["POST"], name="add_passkey"),
        Route(f"{base}/new", passkeys.start_passkey, methods=["POST"], name="start_passkey"),
        Route(f"{base}/{{id:rowid}}/rename", passkeys.rename_passkey, methods=["POST"], name="rename_passkey"),
        Route(f"{base}/{{id:rowid}}/remove", passkeys.remove_passkey, methods=["POST"], name="remove_passkey"),
    ]


def moved(paths: dict[str, str]) -> list[Route]:
    """Earlier addresses of a feature: 308 keeps the method and the body, so an old form still works."""

    def forward(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return RedirectResponse(url_path(request, name), status_code=308)

        return endpoint

    return [Route(old, forward(name), methods=["POST"]) for old, name in paths.items()]
