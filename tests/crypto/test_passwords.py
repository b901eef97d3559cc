"""App passwords and recovery keys: formats and normalisation."""

from __future__ import annotations

import math
import re

import pytest

from crypto import (
    KeyFormatError,
    generate_app_password,
    generate_recovery_key,
    normalize_recovery_key,
)
from crypto.passwords import CROCKFORD_ALPHABET

APP_PASSWORD = re.compile(r"[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}")
RECOVERY_KEY = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){12}")


def test_app_passwords_are_four_groups_of_four_unambiguous_symbols() -> None:
    for _ in range(100):
        assert APP_PASSWORD.fullmatch(generate_app_password())


def test_app_passwords_carry_at_least_80_bits() -> None:
    assert len(set(CROCKFORD_ALPHABET)) == 32
    assert not set("ilou") & set(CROCKFORD_ALPHABET)
    assert 16 * math.log2(len(CROCKFORD_ALPHABET)) >= 80


def test_app_passwords_are_fresh_and_use_the_whole_alphabet() -> None:
    passwords = [generate_app_password() for _ in range(300)]
    assert len(set(passwords)) == len(passwords)
    assert set("".join(passwords).replace("-", "")) == set(CROCKFORD_ALPHABET)


def test_recovery_keys_are_thirteen_groups_of_base32() -> None:
    keys = {generate_recovery_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert RECOVERY_KEY.fullmatch(key)
        assert normalize_recovery_key(key) == key


def test_recovery_key_normalisation_forgives_case_spaces_and_dashes() -> None:
    key = generate_recovery_key()
    compact = key.replace("-", "")
    for typed in (
        key.lower(),
        compact,
        compact.lower(),
        key.replace("-", " "),
        f"  {key.replace('-', ' - ')}\n",
        "-".join(compact[i : i + 2] for i in range(0, len(compact), 2)),
        key.replace("-", "\u00a0"),
    ):
        assert normalize_recovery_key(typed) == key


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "----",
        "A" * 51,
        "A" * 53,
        "A" * 51 + "B",  # the last symbol holds 1 key bit and 4 zero bits: only A or Q
        "A" * 51 + "1",
        "A" * 51 + "0",
        "A" * 50 + "\u00df" + "A",  # "ß".upper() is "SS": never let Unicode case mapping in
        "A" * 51 + "\u0131",  # dotless i upper-cases to I
        "A" * 51 + "=",
    ],
)
def test_malformed_recovery_keys_are_refused(typed: str) -> None:
    with pytest.raises(KeyFormatError) as caught:
        normalize_recovery_key(typed)
    if len(typed) > 4:
        assert typed not in str(caught.value)


def test_both_valid_final_symbols_are_accepted() -> None:
    assert normalize_recovery_key("A" * 52).endswith("AAAA")
    assert normalize_recovery_key("A" * 51 + "Q").endswith("AAAQ")


def test_a_recovery_key_that_is_not_text_is_refused() -> None:
    with pytest.raises(KeyFormatError):
        normalize_recovery_key(b"AAAA" * 13)  # type: ignore[arg-type]
