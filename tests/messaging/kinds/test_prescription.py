from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

import mailparser
import pytest

import crypto
from messaging.errors import InvalidMessage
from messaging.healthid import INS_NIR_TEST_OID
from messaging.kinds.prescription import (
    SPEC,
    Issuer,
    MedicationLine,
    Prescription,
    PrescriptionMessage,
    build_prescription,
    parse_prescription,
    render_text,
)
from messaging.types import Address, MessageKind
from tests.messaging.kinds.corpus_cases import _resign, _with_structured, mail
from tests.messaging.kinds.samples import DATE, JEANNE, PATIENT_ADDRESS, SENDER

STRICT = email.policy.default.clone(raise_on_defect=True)
KEY = crypto.SigningKey(b"\x07" * 32)
PHARMACY = Address.parse("officine-du-parc@pharmacie.pli.test")
DOCTOR = Issuer("10003578209", "Dr Sophie MARTIN", "10", "Médecine générale", "Cabinet du Parc")
AMOXICILLIN = MedicationLine(
    "Amoxicilline 1 g", "1 comprimé matin et soir", "7 jours", "2 boîtes", "3400930000000"
)
PRESCRIPTION = Prescription(
    DOCTOR,
    JEANNE,
    date(2026, 11, 22),
    (
        AMOXICILLIN,
        MedicationLine(
            "Paracétamol 1 g",
            "1 comprimé si douleur",
            "5 jours",
            substitutable=False,
            instructions="Pas plus de 3 par jour",
        ),
    ),
    renewals=2,
    notes="Revoir si la fièvre persiste.\nMerci.",
)
MESSAGE = PrescriptionMessage(
    SENDER, (PATIENT_ADDRESS, PHARMACY), PRESCRIPTION, "Dr_Sophie_MARTIN_Cabinet"
)


def build(message: PrescriptionMessage = MESSAGE, lang: str = "fr") -> bytes:
    return build_prescription(message, KEY, message_id="<rx@pli.test>", date=DATE, lang=lang)


def code_of(raw: bytes, key: crypto.SigningPublicKey = KEY.public, **kw: Any) -> str:
    with pytest.raises(InvalidMessage) as caught:
        parse_prescription(raw, key, **kw)
    return caught.value.code


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_prescription_round_trips_in_each_language(lang):
    raw = build(lang=lang)
    assert parse_prescription(raw, KEY.public) == MESSAGE


def test_the_message_is_strict_rfc5322_and_a_second_parser_reads_it():
    raw = build()
    parsed = email.message_from_bytes(raw, policy=STRICT)
    assert parsed["X-Pli-Type"] == "prescription"
    assert parsed["Subject"] == "Ordonnance du 22/11/2026 pour Jeanne DUPONT"
    other = mailparser.parse_from_bytes(raw)
    assert [a["filename"] for a in other.attachments] == ["pli-prescription.json"]
    assert "Posologie : 1 comprimé matin et soir" in other.text_plain[0]
    assert SPEC.recognises(parsed)
    assert SPEC.kind is MessageKind.PRESCRIPTION


def test_the_readable_part_says_everything_that_is_signed():
    text = render_text(MESSAGE, "fr")
    for needle in (
        "RPPS 10003578209",
        "INS 280037512345642",
        "née le 01/03/1980",
        "Non substituable",
        "Durée : 7 jours",
        "À renouveler 2 fois.",
        "Revoir si la fièvre persiste.",
        PRESCRIPTION.reference,
    ):
        assert needle in text
    assert "Renewable 2 times." in render_text(MESSAGE, "en")


def test_only_the_senders_key_verifies_it():
    assert code_of(build(), crypto.SigningKey(b"\x08" * 32).public) == "signature-invalid"


def test_a_prescription_signed_for_another_mailbox_is_refused():
    raw = build().replace(
        b"From: Dr_Sophie_MARTIN_Cabinet <sophie.martin@",
        b"From: Dr_Sophie_MARTIN_Cabinet <sophie.martine@",
        1,
    )
    assert code_of(raw) == "issuer-mismatch"


def test_unsigned_fields_smuggled_into_the_content_are_refused():
    def edit(data: dict[str, object]) -> None:
        content = data["content"]
        assert isinstance(content, dict)
        content["pharmacy_note"] = "deliver 10 boxes"
        data["signature"] = None
        _resign(data, "prescription")

    raw = _with_structured(
        build_prescription(MESSAGE, _corpus_key(), message_id="<x@pli.test>", date=DATE),
        "application/vnd.pli.prescription+json",
        edit,
    )
    assert code_of(raw, _corpus_key().public) == "structured-malformed"


def _corpus_key() -> crypto.SigningKey:
    from tests.messaging.kinds.corpus_cases import CORPUS_KEY

    return CORPUS_KEY


def test_a_signature_of_the_wrong_shape_is_refused():
    def edit(data: dict[str, object]) -> None:
        data["signature"] = {"algorithm": "RSA", "value": "abc"}

    raw = _with_structured(build(), "application/vnd.pli.prescription+json", edit)
    assert code_of(raw) == "signature-invalid"


def test_duplicate_json_keys_are_refused_before_anything_is_verified():
    parsed = email.message_from_bytes(build(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    for part in parsed.iter_attachments():
        if part.get_content_type() == "application/vnd.pli.prescription+json":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            part.set_content(
                payload[:-1] + b',"signature":{}}',
                maintype="application",
                subtype="vnd.pli.prescription+json",
                params={"version": "1"},
            )
    assert code_of(parsed.as_bytes(policy=email.policy.SMTP)) == "structured-malformed"


def test_an_attachment_beside_the_signed_part_is_refused():
    parsed = email.message_from_bytes(build(), policy=email.policy.default)
    parsed.add_attachment(b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="x.pdf")
    assert code_of(parsed.as_bytes(policy=email.policy.SMTP)) == "unexpected-attachment"


def test_a_message_without_the_structured_part_or_of_another_version_is_refused():
    assert code_of(mail([], kind="prescription")) == "structured-missing"
    raw = build().replace(b'prescription+json; version="1"', b'prescription+json; version="2"')
    assert code_of(raw) == "structured-version"
    assert code_of(build(), max_bytes=100) == "too-large"


def test_test_identities_need_permission():
    message = replace(MESSAGE, test_ins=True)
    raw = build(message)
    assert INS_NIR_TEST_OID.encode() not in raw  # inside base64, but:
    assert code_of(raw) == "ins-oid"
    assert parse_prescription(raw, KEY.public, allow_test_ins=True) == message


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"items": ()}, "prescription-field-missing"),
        ({"items": (replace(AMOXICILLIN, dosage=" "),)}, "prescription-field-missing"),
        ({"items": (replace(AMOXICILLIN, duration=""),)}, "prescription-field-missing"),
        (
            {"items": (replace(AMOXICILLIN, medication="Amox\ticilline"),)},
            "prescription-field-invalid",
        ),
        (
            {"items": (MedicationLine("A", "B", "C", substitutable="no"),)},  # type: ignore[arg-type]
            "prescription-field-invalid",
        ),
        ({"prescriber": replace(DOCTOR, rpps="")}, "rpps-missing"),
        ({"prescriber": replace(DOCTOR, rpps="10003578208")}, "rpps-invalid"),
        ({"prescriber": replace(DOCTOR, name="")}, "prescription-field-missing"),
        ({"prescriber": replace(DOCTOR, profession_code="médecin")}, "prescription-field-invalid"),
        ({"patient": None}, "prescription-field-missing"),
        ({"date": datetime(2026, 11, 22)}, "prescription-field-invalid"),
        ({"renewals": 13}, "prescription-field-invalid"),
        ({"renewals": True}, "prescription-field-invalid"),
        ({"reference": ""}, "prescription-field-missing"),
    ],
)
def test_missing_or_malformed_required_fields_are_refused(change, code):
    with pytest.raises(InvalidMessage) as caught:
        replace(PRESCRIPTION, **change)
    assert caught.value.code == code


def test_a_prescription_needs_a_recipient():
    with pytest.raises(InvalidMessage) as caught:
        build(replace(MESSAGE, recipients=()))
    assert caught.value.code == "prescription-field-missing"


def test_an_html_alternative_that_mail_clients_would_show_instead_is_refused():
    parsed = email.message_from_bytes(build(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    body.make_alternative()
    body.add_alternative(
        "<p>Amoxicilline 1 g : 3 comprimés par jour pendant 30 jours</p>", subtype="html"
    )
    raw = parsed.as_bytes(policy=email.policy.SMTP)
    assert code_of(raw) == "unexpected-attachment"
