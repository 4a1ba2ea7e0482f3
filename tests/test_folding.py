"""Templates compiled per language (web/folding.py): the same markup as translating at render time, with
the literal messages built into the compiled template instead of looked up on every render."""

from __future__ import annotations

import pytest
from jinja2 import DictLoader, Environment

from db import i18n
from web import i18n as web_i18n
from web.folding import LocaleEnvironment

SOURCE = (
    '<button aria-label="{{ _("Close") }}">{{ _("Sign in") }}</button>'
    '<p>{{ _("Signed in as %(email)s", email=who) }}</p>'
    "<p>{{ _(dynamic) }}</p>"
    '<p>{{ ngettext("%(num)d code left", "%(num)d codes left", n) }}</p>'
)
CONTEXT = {"who": "<script>x</script>@example.com", "dynamic": "Save", "n": 2}


def environment(locale: str) -> LocaleEnvironment:
    env = LocaleEnvironment(locale, loader=DictLoader({"page.html": SOURCE}), autoescape=True)
    web_i18n.install(env)
    return env


def render_at_runtime(locale: str) -> str:
    """What the page was before: a plain environment, every `_()` a call of web.i18n.page_gettext."""
    env = Environment(loader=DictLoader({"page.html": SOURCE}), autoescape=True)
    web_i18n.install(env)
    token = i18n.ACTIVE.set(locale)
    try:
        return env.get_template("page.html").render(CONTEXT)
    finally:
        i18n.ACTIVE.reset(token)


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_the_markup_is_the_same_as_translating_at_render_time(locale: str) -> None:
    token = i18n.ACTIVE.set(locale)
    try:
        folded = environment(locale).get_template("page.html").render(CONTEXT)
    finally:
        i18n.ACTIVE.reset(token)
    assert folded == render_at_runtime(locale)
    assert "&lt;script&gt;" in folded and "<script>" not in folded  # values are still escaped


def test_literal_messages_are_compiled_into_the_template() -> None:
    code = environment("de").compile(SOURCE, raw=True)
    german = i18n.translations("de").gettext("Sign in")
    assert german != "Sign in"
    assert german in code  # the translation is static text of the compiled template ...
    assert "'Sign in'" not in code  # ... and the English message is no longer looked up
    assert "_translated" in code  # a message with values is translated once and formatted per render
