"""The TOTP primitives against RFC 6238 / RFC 4226 vectors, and the input rules pyotp leaves to us."""

from __future__ import annotations

import base64
import hashlib

import pyotp
import pytest

from db.factors import totp

SEED_SHA1 = base64.b32encode(b"12345678901234567890").decode()
SEED_SHA256 = base64.b32encode(b"12345678901234567890123456789012").decode()
SEED_SHA512 = base64.b32encode(b"1234567890" * 6 + b"1234").decode()
RFC6238 = [  # RFC 6238 Appendix B: time, SHA1, SHA256, SHA512 (8 digits)
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_vectors_verify_through_matching_step(at: int, sha1: str, sha256: str, sha512: str) -> None:
    for seed, digest, code in (
        (SEED_SHA1, hashlib.sha1, sha1),
        (SEED_SHA256, hashlib.sha256, sha256),
        (SEED_SHA512, hashlib.sha512, sha512),
    ):
        assert totp.matching_step(seed, code, at=at, digits=8, digest=digest) == at // 30
        assert totp.code_at_step(seed, at // 30, digits=8, digest=digest) == code


@pytest.mark.parametrize(("at", "sha1"), [(row[0], row[1]) for row in RFC6238])
def test_rfc6238_six_digit_codes_keep_leading_zeros(at: int, sha1: str) -> None:
    assert totp.matching_step(SEED_SHA1, sha1[-6:], at=at) == at // 30


@pytest.mark.parametrize(("count", "code"), list(enumerate(RFC4226)))
def test_rfc4226_hotp_vectors(count: int, code: str) -> None:
    assert totp.code_at_step(SEED_SHA1, count) == code


def test_wrong_hash_with_the_sha1_seed_does_not_match_the_table() -> None:
    # RFC errata: the SHA256 column needs the 32-byte seed; the 20-byte one gives 32247374 at t=59.
    assert totp.code_at_step(SEED_SHA1, 1, digits=8, digest=hashlib.sha256) == "32247374"


@pytest.mark.parametrize(("offset", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_drift_window_is_one_step_either_side(offset: int, accepted: bool) -> None:
    secret = totp.new_secret()
    at = 1_700_000_015.0
    code = pyotp.TOTP(secret).at(at + 30 * offset)
    step = totp.matching_step(secret, code, at=at)
    assert (step == int(at // 30) + offset) if accepted else step is None


@pytest.mark.parametrize(
    "raw",
    [
        "１２３４５６",  # fullwidth: pyotp's NFKC comparison would accept these
        "١٢٣٤٥٦",  # Arabic-Indic: str.isdigit() and int() accept these
        "12345",
        "1234567",
        "+12345",
        "-12345",
        "1e5000",
        "12345\x00",
        "12 34 5",
        "",
        "1" * 10_000,
        "abcdef",
    ],
)
def test_parse_code_refuses_anything_but_six_ascii_digits(raw: str) -> None:
    assert totp.parse_code(raw) is None


@pytest.mark.parametrize("raw", ["123456", " 123456 ", "123 456", "\t123456", "12 34 56"])
def test_parse_code_strips_ascii_spaces(raw: str) -> None:
    assert totp.parse_code(raw) == "123456"


def test_fullwidth_digits_are_refused_although_pyotp_accepts_them() -> None:
    secret = totp.new_secret()
    at = 1_700_000_015.0
    code = pyotp.TOTP(secret).at(at)
    fullwidth = code.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    assert pyotp.TOTP(secret).verify(fullwidth, for_time=int(at))  # the pitfall is real
    assert totp.matching_step(secret, fullwidth, at=at) is None


def test_new_secret_is_160_bits_and_random() -> None:
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(base64.b32decode(s)) == 20 for s in secrets)


def test_provisioning_uri_follows_key_uri_format() -> None:
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", account="ann@example.com", issuer="Acme Ops")
    assert (
        uri == "otpauth://totp/Acme%20Ops:ann%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme%20Ops"
    )


@pytest.mark.parametrize(("account", "issuer"), [("a:b@example.com", "Chat360"), ("ann@example.com", "Acme: Ops")])
def test_provisioning_uri_refuses_colons(account: str, issuer: str) -> None:
    with pytest.raises(ValueError):
        totp.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", account=account, issuer=issuer)
