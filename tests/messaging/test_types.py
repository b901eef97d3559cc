from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging import Address, InvalidAddress


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sophie.Martin@Medecin.Pli.Test", "sophie.martin@medecin.pli.test"),
        ("<a@b.fr>", "a@b.fr"),
        ("contact@hôpital.fr", "contact@xn--hpital-ixa.fr"),
    ],
)
def test_addresses_are_normalised(text: str, expected: str):
    assert str(Address.parse(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "@b.fr",
        "a@",
        "a@b",
        "a..b@c.fr",
        ".a@c.fr",
        "a@-b.fr",
        "a b@c.fr",
        "a@b.fr\r\nRCPT TO:<x@y.fr>",
    ],
)
def test_malformed_addresses_are_refused(text: str):
    with pytest.raises(InvalidAddress):
        Address.parse(text)


@given(st.text(max_size=80))
def test_parsing_any_text_either_succeeds_or_says_invalid(text: str):
    try:
        address = Address.parse(text)
    except InvalidAddress:
        return
    assert Address.parse(str(address)) == address
