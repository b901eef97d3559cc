"""INS matricules, their key, qualified identities and patient addresses."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.directory import Patient
from messaging.errors import PliError
from messaging.ins import Ins, InvalidINS, QualifiedIdentity, Sex, ins_of, nir_key, patient_address
from messaging.types import Address

# NIR → key, computed by hand: 97 − (NIR mod 97), 2A read as 19 and 2B as 18.
KNOWN = {
    "2550814168025": "38",
    "1840763123456": "90",
    "184052A123456": "82",  # Corse-du-Sud: 1840519123456 mod 97
    "290102B054321": "13",  # Haute-Corse: 2901018054321 mod 97
}


@pytest.mark.parametrize(("nir", "key"), KNOWN.items())
def test_the_key_is_97_minus_the_nir_modulo_97(nir: str, key: str):
    assert nir_key(nir) == key
    assert str(Ins.parse(nir + key)) == nir + key


def test_an_ins_is_read_with_spaces_and_corsica_in_any_case():
    assert Ins.parse("1 84 05 2a 123 456 82") == Ins("184052A123456", "82")
    assert Ins.parse("2 55 08 14 168 025 38").nir == "2550814168025"


def test_a_wrong_key_is_refused_with_the_right_one_named():
    with pytest.raises(InvalidINS) as caught:
        Ins.parse("255081416802539")
    message = str(caught.value)
    assert "wrong key 39" in message and "is 38" in message
    assert isinstance(caught.value, PliError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("25508141680253", "14 characters"),
        ("2550814168025380", "16 characters"),
        ("555081416802538", "first character"),
        ("255082C16802538", "2A or 2B"),
        ("25508141X802538", "not a digit"),
        ("2550814168025AB", "two digits"),
        ("", "0 characters"),
    ],
)
def test_a_malformed_ins_says_what_is_wrong(text: str, says: str):
    with pytest.raises(InvalidINS, match=says):
        Ins.parse(text)


@given(
    st.sampled_from("123478"),
    st.integers(0, 99),
    st.integers(1, 12),
    st.sampled_from([*(f"{d:02d}" for d in range(1, 96)), "2A", "2B", "99"]),
    st.integers(0, 999),
    st.integers(1, 999),
    st.integers(1, 97),
)
def test_only_the_right_key_is_accepted(
    sex: str, year: int, month: int, dept: str, town: int, order: int, key: int
):
    nir = f"{sex}{year:02d}{month:02d}{dept}{town:03d}{order:03d}"
    right = nir_key(nir)
    assert 1 <= int(right) <= 97
    if f"{key:02d}" == right:
        assert Ins.parse(nir + right).key == right
    else:
        with pytest.raises(InvalidINS, match="wrong key"):
            Ins.parse(f"{nir}{key:02d}")


def qualified(**changes: Any) -> QualifiedIdentity:
    traits: dict[str, Any] = {
        "ins": Ins.parse("255081416802538"),
        "birth_name": "DURAND",
        "first_given_name": "Camille",
        "birth_date": date(1955, 8, 3),
        "sex": Sex.FEMALE,
    }
    traits.update(changes)
    return QualifiedIdentity(**traits)


def test_a_patient_address_is_the_ins_at_the_patient_subdomain():
    address = patient_address(qualified(), "pli.test")
    assert address == Address("255081416802538", "patient.pli.test")
    assert ins_of(address) == Ins.parse("255081416802538")
    corsica = qualified(ins=Ins.parse("184052A12345682"), birth_date=date(1984, 5, 1), sex=Sex.MALE)
    assert str(patient_address(corsica, "pli.test")) == "184052a12345682@patient.pli.test"
    assert ins_of(patient_address(corsica, "pli.test")) == corsica.ins


def test_a_patient_address_needs_a_qualified_identity():
    with pytest.raises(InvalidINS, match="qualified identity"):
        patient_address(cast(QualifiedIdentity, Ins.parse("255081416802538")), "pli.test")
    with pytest.raises(InvalidINS, match="qualified identity"):
        patient_address(cast(QualifiedIdentity, "255081416802538"), "pli.test")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"birth_name": " "}, "birth name"),
        ({"first_given_name": ""}, "first given name"),
        ({"sex": Sex.MALE}, "sex M contradicts"),
        ({"birth_date": date(1956, 8, 3)}, "birth year ends in 55"),
        ({"birth_date": date(1955, 9, 3)}, "birth month is 08"),
        ({"ins": "255081416802538"}, "needs an INS"),
    ],
)
def test_an_identity_is_not_qualified_without_consistent_traits(changes: dict[str, Any], says: str):
    with pytest.raises(InvalidINS, match=says):
        qualified(**changes)


def test_an_unknown_birth_month_in_the_nir_accepts_any_month():
    nir = "2553214168025"  # month 32: not a calendar month
    identity = qualified(ins=Ins(nir, nir_key(nir)), birth_date=date(1955, 1, 1))
    assert identity.birth_date.month == 1


def test_a_patient_mailbox_must_be_its_identitys_address():
    identity = qualified()
    patient = Patient.create(identity, "pli.test", minor=True)
    assert patient.address == patient_address(identity, "pli.test") and patient.minor
    with pytest.raises(InvalidINS):
        Patient(identity, Address("184076312345690", "patient.pli.test"))
    with pytest.raises(InvalidINS, match="not a patient address"):
        Patient(identity, Address("255081416802538", "pli.test"))
