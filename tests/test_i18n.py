"""Every language and every reader: complete catalogs, every string marked, the language negotiated from the
browser, the member's choice winning and persisting, right-to-left Arabic, and still one statement a page."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db import i18n, useragents
from db.engine import open_session
from db.models import Notice
from tests.conftest import Auth, Member
from tests.statements import counted
from web.i18n import negotiate

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def catalog(locale: str):  # noqa: ANN201
    with (ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=locale)


@pytest.mark.parametrize("locale", ["de", "ar"])
def test_every_message_is_translated_with_all_plural_forms_and_no_fuzzy(locale: str) -> None:
    cat = catalog(locale)
    assert cat.num_plurals == (6 if locale == "ar" else 2)
    for message in cat:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert len(forms) == (cat.num_plurals if message.pluralizable else 1), message.id
        assert all(form.strip() for form in forms), f"{locale}: no translation for {message.id!r}"
        source = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set(PLACEHOLDER.findall(source[-1])) - {"%(num)d"}  # a plural form may spell the number
        for form in forms:
            assert wanted <= set(PLACEHOLDER.findall(form)), f"{locale}: {message.id!r} loses a placeholder"


def test_extraction_finds_no_message_missing_from_the_catalogs(tmp_path: Path) -> None:
    """Run the extractor as `make translations` does: whatever is marked must be in every catalog."""
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    command = [str(pybabel), "-q", "extract", "-F", "babel.cfg", "-k", "N_", "--no-location", "-o", str(pot), "."]
    subprocess.run(command, cwd=ROOT, check=True)
    with pot.open("rb") as f:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    assert len(extracted) > 250
    for locale in i18n.LOCALES:
        have = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(locale) if m.id}
        assert not extracted - have, f"{locale} lacks: {sorted(extracted - have)[:5]} (run `make translations`)"


def test_arabic_plurals_follow_the_number() -> None:
    t = i18n.translations("ar")
    day = ("Remember this browser for %(num)d day", "Remember this browser for %(num)d days")
    assert "يومين" in t.ngettext(*day, 2)
    assert "أيام" in t.ngettext(*day, 5)
    assert "يومًا" in t.ngettext(*day, 11)
    assert t.ngettext(*day, 100).endswith("يوم")


def test_accept_language_is_negotiated_among_the_shipped_languages() -> None:
    assert negotiate("de-AT,de;q=0.9,en;q=0.8") == "de"
    assert negotiate("fr-FR, ar;q=0.5, de;q=0.4") == "ar"
    assert negotiate("fr, es") == "en"
    assert negotiate("de;q=0, ar;q=0.1") == "ar"
    assert negotiate("") == "en"


def test_the_login_page_follows_the_browser(client: TestClient) -> None:
    german = client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de" dir="ltr">' in german.text
    assert "Anmelden" in german.text and ">Sign in<" not in german.text
    arabic = client.get("/login", headers={"Accept-Language": "ar"})
    assert '<html lang="ar" dir="rtl">' in arabic.text
    assert "تسجيل الدخول" in arabic.text
    english = client.get("/login", headers={"Accept-Language": "fr"})
    assert '<html lang="en" dir="ltr">' in english.text


def choose(auth: Auth, locale: str, zone: str = "UTC"):  # noqa: ANN201
    return auth.post("/settings/language", {"locale": locale, "time_zone": zone}, page="/settings")


def test_the_members_choice_overrides_the_browser_and_persists(auth: Auth, admin: Member, engine: Engine) -> None:
    auth.login(admin)
    assert choose(auth, "de", "Europe/Berlin").status_code == 303
    for path in ("/", "/settings", "/team", "/activity"):
        page = auth.client.get(path, headers={"Accept-Language": "ar, en;q=0.5"})
        assert '<html lang="de" dir="ltr">' in page.text, path
    # Signed in again (a new session), the choice is still there: it is on the user row.
    auth.logout()
    auth.login(admin)
    settings = auth.client.get("/settings", headers={"Accept-Language": "en"})
    assert '<html lang="de"' in settings.text
    assert '<option value="de" lang="de" selected>' in settings.text
    assert '<option value="Europe/Berlin" selected>' in settings.text
    assert choose(auth, "xx").status_code == 422


def test_arabic_is_right_to_left_and_codes_stay_left_to_right(auth: Auth, member: Member) -> None:
    auth.login(member)
    choose(auth, "ar")
    page = auth.client.get("/settings/mfa/totp")
    assert '<html lang="ar" dir="rtl">' in page.text
    assert '<span dir="ltr">agent@example.com</span>' in page.text
    started = auth.post("/settings/mfa/totp/enable", page="/settings/mfa/totp", headers={"HX-Request": "true"})
    assert '<dd dir="ltr"><code id="setup-key-value"' in started.text
    assert re.search(r'<input id="code" name="code"[^>]*dir="ltr"', started.text)


# English words that must not be left on a German page (each is on one of the pages below in English).
ENGLISH = ["Settings", "Password", "Sign out", "Sessions", "Security activity", "Dashboard", "Members", "Save"]


def test_german_pages_carry_no_english(auth: Auth, admin: Member) -> None:
    auth.login(admin)
    choose(auth, "de")
    for path in ("/", "/settings", "/settings?section=mfa", "/team", "/activity"):
        text = re.sub(r"<[^>]+>", " ", auth.client.get(path).text)  # the words, not the markup
        for word in ENGLISH:
            assert not re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text), f"{path}: {word!r} in English"
    assert "Einstellungen" in auth.client.get("/settings").text


def test_errors_from_the_model_show_in_the_page_language(auth: Auth, member: Member) -> None:
    auth.login(member)
    choose(auth, "de")
    response = auth.post("/settings/password", {"current_password": "wrong", "new_password": "x"}, page="/settings")
    assert "Verwenden Sie mindestens 15 Zeichen." in response.text


def test_a_notice_is_written_in_the_members_language(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    choose(auth, "de", "Europe/Berlin")
    auth.enable_totp(member)
    with open_session(engine) as session:
        texts = [n.text for n in session.exec(select(Notice).where(Notice.user_id == member.user.id))]
    assert any("Multi-Faktor-Authentifizierung wurde für Ihr Konto eingeschaltet" in t for t in texts), texts
    assert any("Europe/Berlin" in t for t in texts)


def test_pages_are_still_one_statement_in_any_language(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    choose(auth, "ar")
    auth.client.get("/settings")  # the once-a-minute activity write happens here, not below
    with counted(engine) as seen:
        assert auth.client.get("/settings").status_code == 200
    assert len(seen) == 1, seen


def test_the_stylesheet_mirrors_with_logical_properties() -> None:
    """One stylesheet for both directions: no physical left/right that would not flip for Arabic."""
    css = (ROOT / "static" / "app.css").read_text()
    physical = re.findall(
        r"(?:margin|padding|border|inset)-(?:left|right)|text-align:\s*(?:left|right)|[{;]\s*(?:left|right):", css
    )
    assert not physical, physical


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "Chrome on Linux"), ("de", "Chrome unter Linux"), ("ar", "Chrome على Linux")],
)
def test_device_names_in_the_page_language(locale: str, expected: str) -> None:
    """The Sessions list and the security log name a device in the page's language; product names stay."""
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    token = i18n.ACTIVE.set(locale)
    try:
        assert useragents.describe(ua) == expected
        assert useragents.describe("") == i18n.translate(useragents.UNKNOWN)
    finally:
        i18n.ACTIVE.reset(token)


def test_the_activity_logs_words_follow_the_page_language(auth: Auth, admin: Member) -> None:
    """The outcome is a word of the page; the details stay as the log recorded them, marked as English."""
    auth.login(admin)
    choose(auth, "de")
    activity = auth.client.get("/activity").text
    assert "<td>Erfolgreich</td>" in activity and "<td>success</td>" not in activity
    assert '<span lang="en" dir="ltr">' in activity  # the details, the log's own record
