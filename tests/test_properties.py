"""Property-based tests (hypothesis) of the pure input rules: TOTP code parsing and matching, backup-code
normalisation and the `next` validation. The oracles here are written independently of the app's code
(a plain HOTP with `hmac`, explicit ASCII sets), so a shared mistake can't hide."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from urllib.parse import unquote, urlsplit

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from db.factors import recovery_codes as codes
from db.factors import totp
from web.safety import safe_next

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ASCII_DIGITS = "0123456789"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
SEPARATORS = " \t\n\r\x0b\x0c-"  # ASCII whitespace and the dash

any_text = st.text(st.characters(codec=None), max_size=40)


def hotp(secret: str, counter: int) -> str:
    """RFC 4226 from the definition, for the oracle."""
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 1_000_000).zfill(6)


# ---- db.totp.parse_code


def parse_oracle(raw: str) -> str | None:
    stripped = raw.replace(" ", "").replace("\t", "")
    ok = len(raw) <= totp.MAX_INPUT and len(stripped) == 6 and all(c in ASCII_DIGITS for c in stripped)
    return stripped if ok else None


@FAST
@given(any_text)
@example("１２３４５６")
@example("١٢٣٤٥٦")
@example("12345\x00")
@example("+12345")
@example("1e5")
@example("12 34 56")
@example("¹²³⁴⁵⁶")
def test_parse_code_accepts_exactly_six_ascii_digits_with_spaces_or_tabs(raw: str) -> None:
    """Rule 12: the result is the six ASCII digits when the input is those digits plus ASCII spaces/tabs,
    else None; whatever unicode the input holds."""
    assert totp.parse_code(raw) == parse_oracle(raw)


@FAST
@given(
    st.text(ASCII_DIGITS, min_size=6, max_size=6),
    st.lists(st.sampled_from([" ", "\t", "  "]), min_size=7, max_size=7),
)
def test_parse_code_strips_ascii_spaces_anywhere(digits: str, gaps: list[str]) -> None:
    typed = "".join(gap + digit for gap, digit in zip(gaps, digits, strict=False)) + gaps[-1]
    assert totp.parse_code(typed) == digits


@FAST
@given(st.text(ASCII_DIGITS, min_size=6, max_size=6), st.integers(0, 5), st.characters(categories=["Nd"]))
def test_parse_code_refuses_any_non_ascii_digit(digits: str, position: int, other: str) -> None:
    """Rule 12: a single digit from another script (fullwidth, Arabic-Indic, ...) spoils the code."""
    assume(other not in ASCII_DIGITS)
    assert totp.parse_code(digits[:position] + other + digits[position + 1 :]) is None


# ---- db.totp.matching_step

secrets_ = st.binary(min_size=20, max_size=20).map(lambda b: base64.b32encode(b).decode())
moments = st.floats(min_value=30 * 10, max_value=4_102_444_800, allow_nan=False, allow_infinity=False)


@FAST
@given(secrets_, moments, st.text(ASCII_DIGITS, min_size=6, max_size=6))
def test_matching_step_only_accepts_a_code_of_the_window(secret: str, at: float, code: str) -> None:
    """Rules 9 and 11: a returned step is within ±1 of the server's step and its code is the one typed."""
    step = totp.matching_step(secret, code, at=at)
    now = int(at // 30)
    window = {s: hotp(secret, s) for s in (now - 1, now, now + 1)}
    if step is None:
        assert code not in window.values()
    else:
        assert step in window and window[step] == code


@FAST
@given(secrets_, moments, st.integers(-4, 4))
def test_matching_step_accepts_neighbours_and_refuses_the_rest(secret: str, at: float, offset: int) -> None:
    """Rule 11: the codes of steps T-1, T and T+1 are accepted (as that step), T±2 and further are not,
    unless by coincidence they equal a code inside the window."""
    now = int(at // 30)
    code = hotp(secret, now + offset)
    step = totp.matching_step(secret, code, at=at)
    inside = {hotp(secret, s) for s in (now - 1, now, now + 1)}
    if abs(offset) <= 1:
        assert step is not None and hotp(secret, step) == code
    elif code not in inside:
        assert step is None


@FAST
@given(secrets_, moments, any_text)
def test_matching_step_never_accepts_malformed_input(secret: str, at: float, raw: str) -> None:
    if parse_oracle(raw) is None:
        assert totp.matching_step(secret, raw, at=at) is None


# ---- db.codes.normalize

valid_codes = st.text(ALPHABET, min_size=16, max_size=16)


@st.composite
def typed_forms(draw: st.DrawFn) -> tuple[str, str]:
    """A valid code and a way a person might type it: any case, spaces and dashes anywhere."""
    code = draw(valid_codes)
    typed = ""
    for char in code:
        typed += draw(st.sampled_from(["", "", " ", "-", "  ", "\t"]))
        typed += char.lower() if draw(st.booleans()) else char
    return code, typed + draw(st.sampled_from(["", " ", "-"]))


@FAST
@given(any_text)
def test_normalize_is_idempotent(raw: str) -> None:
    once = codes.normalize(raw)
    if once is not None:
        assert codes.normalize(once) == once
        assert len(once) == codes.LENGTH and all(c in ALPHABET for c in once)


@FAST
@given(typed_forms())
def test_normalize_ignores_case_spaces_and_dashes(pair: tuple[str, str]) -> None:
    code, typed = pair
    assume(len(typed) <= codes.MAX_INPUT)
    assert codes.normalize(typed) == code
    assert codes.normalize(codes.format_code(code)) == code


@FAST
@given(valid_codes, st.integers(0, 15), st.characters(codec=None))
def test_normalize_refuses_a_character_outside_the_alphabet(code: str, position: int, other: str) -> None:
    """Replacing one character of a valid code by anything that is not a letter of the alphabet (in either
    case) or a separator makes it invalid."""
    assume(other.upper() not in ALPHABET and other not in SEPARATORS and not other.isspace())
    assume(other not in ALPHABET.lower())
    assert codes.normalize(code[:position] + other + code[position + 1 :]) is None


@FAST
@given(any_text)
@example("ſſſſ2222333344ſſ")  # LATIN SMALL LETTER LONG S upper-cases to "S"
@example("ß222222233334444")  # SHARP S upper-cases to "SS"
@example("\u00a02222333344445555")
def test_normalize_accepts_only_ascii_input(raw: str) -> None:
    """Rules 12 and 19: a backup code is forgiving in case, spaces and dashes, not in script: anything it
    accepts was typed with the alphabet's letters (either case), ASCII whitespace and dashes only."""
    if codes.normalize(raw) is not None:
        allowed = set(ALPHABET) | set(ALPHABET.lower()) | set(SEPARATORS)
        assert set(raw) <= allowed, f"accepted {raw!r}"


# ---- web.safety.safe_next


@FAST
@given(any_text)
@example("//evil.example")
@example("/\\evil.example")
@example("/%5Cevil.example")
@example("/%2F/evil.example")
@example("/%252F%252Fevil")
@example("https://evil.example")
@example("/\t/evil.example")
@example("javascript:alert(1)")
def test_safe_next_always_gives_a_local_path(raw: str) -> None:
    """Rule 33: the result is a path on this site: starts with one "/", no backslash, no control character,
    no scheme or host, and none appears after percent-decoding either."""
    result = safe_next(raw)
    for value in (result, unquote(result), unquote(unquote(result))):
        assert value.startswith("/") and not value.startswith("//"), (raw, result)
        assert "\\" not in value
        assert not re.search(r"[\x00-\x1f\x7f]", value)
    parts = urlsplit(result)
    assert not parts.scheme and not parts.netloc
    assert result in (raw, "/")


@FAST
@given(
    st.lists(
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/\\?#%"), min_size=1),
        max_size=5,
    )
)
def test_safe_next_keeps_ordinary_local_paths(segments: list[str]) -> None:
    """The validation is not simply "always /": ordinary local paths pass through unchanged."""
    path = "/" + "/".join(segments)
    assert safe_next(path) == path


@FAST
@given(
    st.sampled_from(["http://", "https://", "//", "/\\", "\\\\", "/%5C", "%2F%2F", "/%2F", "https:", "javascript:"]),
    st.text(st.characters(codec="ascii", exclude_characters="\\"), max_size=20),
)
def test_safe_next_refuses_every_way_off_the_site(prefix: str, rest: str) -> None:
    assert safe_next(prefix + "evil.example" + rest) == "/"
