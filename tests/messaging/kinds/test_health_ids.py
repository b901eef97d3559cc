from __future__ import annotations

import pytest

from messaging.errors import InvalidMessage
from messaging.healthid import (
    INS_NIA_OID,
    INS_NIA_TEST_OID,
    INS_NIR_OID,
    INS_NIR_TEST_OID,
    check_ins_oid,
    checked_ins,
    checked_rpps,
    ins_oid,
    luhn_valid,
)
from tests.messaging.kinds.samples import JEANNE, PAUL, ins


def test_the_oid_follows_the_kind_of_number():
    nia = ins("7800375123456")
    assert (ins_oid(JEANNE.ins), ins_oid(nia)) == (INS_NIR_OID, INS_NIA_OID)
    assert (ins_oid(JEANNE.ins, test=True), ins_oid(nia, test=True)) == (
        INS_NIR_TEST_OID,
        INS_NIA_TEST_OID,
    )


def test_checked_ins_names_what_is_wrong():
    assert checked_ins(f" {PAUL.ins} ".lower()) == PAUL.ins
    cases = {None: "ins-missing", "": "ins-missing", "2800375123456": "ins-malformed"}
    cases[str(JEANNE.ins)[:13] + "00"] = "ins-key"
    cases["9800375123456" + "42"] = "ins-malformed"
    for text, code in cases.items():
        with pytest.raises(InvalidMessage) as caught:
            checked_ins(text)
        assert caught.value.code == code, text


def test_an_oid_must_be_the_authority_of_the_number():
    check_ins_oid(JEANNE.ins, INS_NIR_OID, allow_test=False)
    for oid, allow in ((INS_NIA_OID, True), ("1.2.3", True), (INS_NIR_TEST_OID, False)):
        with pytest.raises(InvalidMessage) as caught:
            check_ins_oid(JEANNE.ins, oid, allow_test=allow)
        assert caught.value.code == "ins-oid"


def test_rpps_numbers_carry_a_luhn_key():
    assert luhn_valid("10003578209")
    assert not luhn_valid("10003578208")
    assert not luhn_valid("")
    assert not luhn_valid("1000357820a")
    assert checked_rpps(" 10003578209 ") == "10003578209"
    for text, code in (
        ("", "rpps-missing"),
        (None, "rpps-missing"),
        ("123", "rpps-invalid"),
        ("10003578208", "rpps-invalid"),
        ("１0003578209", "rpps-invalid"),
    ):
        with pytest.raises(InvalidMessage) as caught:
            checked_rpps(text)
        assert caught.value.code == code, text
