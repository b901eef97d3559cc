from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import date

import mailparser
import pytest

import crypto
from messaging.errors import InvalidMessage
from messaging.kinds.certificate import (
    SPEC,
    Certificate,
    CertificateMessage,
    Issuer,
    build_certificate,
    parse_certificate,
    render_text,
)
from messaging.types import MessageKind
from tests.messaging.kinds.samples import DATE, PATIENT_ADDRESS, PAUL, SENDER

STRICT = email.policy.default.clone(raise_on_defect=True)
KEY = crypto.SigningKey(b"\x09" * 32)
MIDWIFE = Issuer("10003578217", "Mme Claire PETIT", "50", organisation="Maternité du CH")
CERTIFICATE = Certificate(
    MIDWIFE,
    PAUL,
    date(2026, 11, 22),
    "Non contre-indication à la pratique du sport",
    "Je soussignée certifie avoir examiné ce jour M. Paul-Émile LÉGER.\nAucune contre-indication.",
    valid_until=date(2027, 11, 21),
)
MESSAGE = CertificateMessage(SENDER, (PATIENT_ADDRESS,), CERTIFICATE)


def build(message: CertificateMessage = MESSAGE, lang: str = "fr") -> bytes:
    return build_certificate(message, KEY, message_id="<c@pli.test>", date=DATE, lang=lang)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_certificate_round_trips_in_each_language(lang):
    assert parse_certificate(build(lang=lang), KEY.public) == MESSAGE


def test_a_certificate_without_end_date_round_trips():
    message = replace(MESSAGE, certificate=replace(CERTIFICATE, valid_until=None))
    assert parse_certificate(build(message), KEY.public) == message


def test_the_message_is_strict_rfc5322_and_a_second_parser_reads_it():
    raw = build()
    parsed = email.message_from_bytes(raw, policy=STRICT)
    assert parsed["X-Pli-Type"] == "certificate"
    assert SPEC.recognises(parsed) and SPEC.kind is MessageKind.CERTIFICATE
    other = mailparser.parse_from_bytes(raw)
    assert "Aucune contre-indication." in other.text_plain[0]
    assert "Sage-femme" in render_text(MESSAGE, "fr")
    assert "Valid until 2027-11-21." in render_text(MESSAGE, "en")


def test_only_the_senders_key_verifies_it():
    with pytest.raises(InvalidMessage) as caught:
        parse_certificate(build(), crypto.SigningKey(b"\x01" * 32).public)
    assert caught.value.code == "signature-invalid"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"statement": ""}, "certificate-field-missing"),
        ({"title": " "}, "certificate-field-missing"),
        ({"statement": "a\x07b"}, "certificate-field-invalid"),
        ({"valid_until": date(2026, 1, 1)}, "certificate-field-invalid"),
        ({"issuer": replace(MIDWIFE, rpps="1")}, "rpps-invalid"),
        ({"reference": ""}, "certificate-field-missing"),
    ],
)
def test_missing_or_malformed_required_fields_are_refused(change, code):
    with pytest.raises(InvalidMessage) as caught:
        replace(CERTIFICATE, **change)
    assert caught.value.code == code
