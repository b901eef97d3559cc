"""Receipts: RFC 3464 delivery status notifications and RFC 8098 disposition notifications,
the national integration MDN (codes 900-906) and RFC 8098 §2.1's automatic-MDN rule."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from email.parser import BytesParser

import mailparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.dsn import (
    BounceReason,
    DeliveryReport,
    DsnAction,
    RecipientStatus,
    bounce,
    build_dsn,
    parse_dsn,
)
from messaging.errors import InvalidMessage
from messaging.kinds import receipt
from messaging.mdn import (
    KO_SUBJECT_PREFIX,
    ActionMode,
    DispositionNotification,
    DispositionType,
    IntegrationError,
    SendingMode,
    build_mdn,
    integration_receipt,
    parse_mdn,
    read_receipt,
    should_send_automatic_mdn,
)
from messaging.types import Address, MessageKind

STRICT = email.policy.default.clone(raise_on_defect=True)
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
DAEMON = Address.parse("mailer-daemon@pli.test")
DOCTOR = Address.parse("sophie.martin@medecin.pli.test")
PATIENT = Address.parse("180012345678901@patient.pli.test")
DMP = Address.parse("dmp-integration@ch-exemple.pli.test")
ORIGINAL_ID = "<original-1@medecin.pli.test>"


def strict(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=STRICT).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def well_formed(raw: bytes) -> EmailMessage:
    msg = strict(raw)
    parsed = mailparser.parse_from_bytes(raw)
    assert not parsed.defects
    assert parsed.subject == str(msg["Subject"])
    assert msg["X-Pli-Type"] == MessageKind.RECEIPT.value
    assert msg["X-MSS-NIL"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert receipt.recognises(msg)
    return msg


def a_bounce(*statuses: RecipientStatus, **kw: object) -> DeliveryReport:
    return DeliveryReport(
        sender=DAEMON,
        recipient=DOCTOR,
        reporting_mta="mx.pli.test",
        recipients=statuses or (bounce(PATIENT, BounceReason.PATIENT_NOT_FOUND),),
        original_message_id=ORIGINAL_ID,
        original_subject="Résultats d'analyse",
        **kw,  # type: ignore[arg-type]
    )


# --- DSN --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("reason", list(BounceReason))
def test_every_bounce_cause_round_trips_and_tells_its_cause(
    reason: BounceReason, lang: str
) -> None:
    report = a_bounce(bounce(PATIENT, reason, last_attempt=NOW))
    raw = build_dsn(report, date=NOW, lang=lang)  # type: ignore[arg-type]
    msg = well_formed(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    back = parse_dsn(raw)
    assert back == report
    assert back.recipients[0].reason is reason
    assert back.recipients[0].status == reason.status
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None and reason.label(lang) in body.get_content()  # type: ignore[arg-type]


def test_bounce_causes_have_their_rfc_3463_codes() -> None:
    assert {r: r.status for r in BounceReason} == {
        BounceReason.MAILBOX_CLOSED: "5.2.1",
        BounceReason.PATIENT_NOT_FOUND: "5.1.1",
        BounceReason.INVALID_ADDRESS: "5.1.3",
        BounceReason.TOO_LARGE: "5.3.4",
    }


def test_a_report_with_every_field_and_several_recipients_round_trips() -> None:
    report = a_bounce(
        RecipientStatus(
            PATIENT,
            DsnAction.DELIVERED,
            "2.0.0",
            diagnostic="smtp; 250 2.0.0 OK",
            original_recipient=PATIENT,
            remote_mta="mx.peer.test",
            last_attempt=NOW,
        ),
        RecipientStatus(DOCTOR, DsnAction.DELAYED, "4.4.1", diagnostic="smtp; 451 4.4.1 try later"),
        RecipientStatus(DMP, DsnAction.RELAYED, "2.1.5"),
        original_envelope_id="env-42",
        arrival_date=NOW - timedelta(hours=1),
    )
    raw = build_dsn(report, date=NOW, message_id="<dsn-1@pli.test>")
    well_formed(raw)
    assert parse_dsn(raw) == report
    assert parse_dsn(raw).recipients[0].reason is None
    assert str(strict(raw)["Subject"]) == "Retardé : Résultats d'analyse"


def test_a_report_of_deliveries_only_says_delivered() -> None:
    report = DeliveryReport(
        DAEMON, DOCTOR, "mx.pli.test", (RecipientStatus(PATIENT, DsnAction.DELIVERED, "2.0.0"),)
    )
    assert str(strict(build_dsn(report, date=NOW))["Subject"]) == "Remis"
    assert str(strict(build_dsn(report, date=NOW, lang="en"))["Subject"]) == "Delivered"
    assert parse_dsn(build_dsn(report, date=NOW)) == report


def test_an_unknown_pli_diagnostic_is_no_reason() -> None:
    status = RecipientStatus(PATIENT, DsnAction.FAILED, "5.0.0", diagnostic="x-pli; lost")
    assert status.reason is None


def test_overlong_fields_are_refused() -> None:
    with pytest.raises(InvalidMessage) as caught:
        read_receipt(reader=PATIENT, notify=DOCTOR, original_message_id="<" + "x" * 1000 + ">")
    assert caught.value.code == "mdn-invalid-field"


def test_the_human_part_says_what_happened() -> None:
    fr = strict(build_dsn(a_bounce(), date=NOW)).get_body(preferencelist=("plain",))
    en = strict(build_dsn(a_bounce(), date=NOW, lang="en")).get_body(preferencelist=("plain",))
    assert fr is not None and en is not None
    assert "non remis — aucun patient ne correspond à cette adresse (5.1.1)" in fr.get_content()
    assert "not delivered — no patient has this address (5.1.1)" in en.get_content()
    assert str(strict(build_dsn(a_bounce(), date=NOW))["Subject"]) == (
        "Non remis : Résultats d'analyse"
    )


POSTFIX_BOUNCE = b"""From: MAILER-DAEMON@mx.peer.test (Mail Delivery System)
To: sophie.martin@medecin.pli.test
Subject: Undelivered Mail Returned to Sender
Message-Id: <20261122090000.ABC@mx.peer.test>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="ABC.1700000000/mx.peer.test"

This is a MIME-encapsulated message.

--ABC.1700000000/mx.peer.test
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--ABC.1700000000/mx.peer.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.peer.test
X-Postfix-Queue-ID: ABC
X-Postfix-Sender: rfc822; sophie.martin@medecin.pli.test
Arrival-Date: Sun, 22 Nov 2026 09:59:58 +0100 (CET)

Final-Recipient: rfc822; nobody@peer.test
Original-Recipient: rfc822;nobody@peer.test
Action: failed
Status: 5.1.1 (mailbox unknown)
Remote-MTA: dns; inbound.peer.test
Diagnostic-Code: smtp; 550 5.1.1 <nobody@peer.test>: Recipient address
    rejected: User unknown

--ABC.1700000000/mx.peer.test
Content-Description: Undelivered Message
Content-Type: message/rfc822

From: sophie.martin@medecin.pli.test
To: nobody@peer.test
Subject: Compte rendu
Message-ID: <cr-7@medecin.pli.test>

Le compte rendu.

--ABC.1700000000/mx.peer.test--
"""


def test_a_bounce_from_a_peer_mta_is_read() -> None:
    report = receipt.parse_receipt(POSTFIX_BOUNCE.replace(b"\n", b"\r\n"))
    assert isinstance(report, DeliveryReport)
    assert report.reporting_mta == "mx.peer.test"
    assert report.original_message_id == "<cr-7@medecin.pli.test>"
    assert report.original_subject == "Compte rendu"
    assert report.arrival_date == datetime(2026, 11, 22, 8, 59, 58, tzinfo=UTC)
    (status,) = report.recipients
    assert status.final_recipient == Address.parse("nobody@peer.test")
    assert status.action is DsnAction.FAILED
    assert status.status == "5.1.1"
    assert status.remote_mta == "inbound.peer.test"
    assert status.diagnostic.startswith("smtp; 550 5.1.1 <nobody@peer.test>: Recipient address")


def _dsn_with(per_recipient: str, per_message: str = "Reporting-MTA: dns; mx.pli.test") -> bytes:
    return (
        "From: mailer-daemon@pli.test\r\nTo: sophie.martin@medecin.pli.test\r\n"
        "Subject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
        f"--b\r\nContent-Type: message/delivery-status\r\n\r\n{per_message}\r\n\r\n"
        f"{per_recipient}\r\n--b--\r\n"
    ).encode()


GOOD_RECIPIENT = "Final-Recipient: rfc822; a@pli.test\r\nAction: failed\r\nStatus: 5.1.1"
GOOD_DSN = _dsn_with(GOOD_RECIPIENT)
ONLY_ARRIVAL = "Arrival-Date: Sun, 22 Nov 2026 09:00:00 +0000"


def recipient_with(old: str, new: str) -> bytes:
    return _dsn_with(GOOD_RECIPIENT.replace(old, new))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"From: a@pli.test\r\n\r\nhello", "dsn-not-report"),
        (GOOD_DSN.replace(b"delivery-status;", b"disposition-notification;"), "dsn-not-report"),
        (GOOD_DSN.replace(b"message/delivery-status", b"text/plain"), "dsn-missing-status"),
        (_dsn_with("").replace(b"\r\n\r\n\r\n--b--", b"\r\n--b--"), "dsn-no-recipient"),
        (_dsn_with(GOOD_RECIPIENT, per_message=ONLY_ARRIVAL), "dsn-missing-field"),
        (_dsn_with("Action: failed\r\nStatus: 5.1.1"), "dsn-missing-field"),
        (recipient_with("5.1.1", "five"), "dsn-invalid-status"),
        (recipient_with("5.1.1", "9.1.1"), "dsn-invalid-status"),
        (recipient_with("5.1.1", "2.0.0"), "dsn-status-action-mismatch"),
        (recipient_with("failed", "exploded"), "dsn-invalid-field"),
        (recipient_with("a@pli.test", "not an address"), "dsn-invalid-field"),
        (_dsn_with(GOOD_RECIPIENT + "\r\nAction: failed"), "dsn-invalid-field"),
        (_dsn_with(GOOD_RECIPIENT + "\r\nLast-Attempt-Date: yesterday"), "dsn-invalid-field"),
        (GOOD_DSN.replace(b"From: mailer-daemon@pli.test", b"From: x"), "receipt-invalid-header"),
    ],
)
def test_malformed_delivery_reports_are_refused_with_a_precise_code(raw: bytes, code: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_dsn(raw)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ({"diagnostic": "smtp; 550\r\nBcc: victim@pli.test"}, "dsn-invalid-field"),
        ({"diagnostic": "smtp; 550 refusé"}, "dsn-invalid-field"),
        ({"remote_mta": "mx\n.pli.test"}, "dsn-invalid-field"),
        ({"last_attempt": datetime(2026, 1, 1)}, "dsn-invalid-field"),
        ({"status": "5.1"}, "dsn-invalid-status"),
    ],
)
def test_a_report_that_could_inject_headers_cannot_be_built(
    status: dict[str, object], code: str
) -> None:
    fields: dict[str, object] = {
        "final_recipient": PATIENT,
        "action": DsnAction.FAILED,
        "status": "5.1.1",
    }
    with pytest.raises(InvalidMessage) as caught:
        RecipientStatus(**{**fields, **status})  # type: ignore[arg-type]
    assert caught.value.code == code


def test_a_report_needs_a_recipient_and_a_reporting_mta() -> None:
    with pytest.raises(InvalidMessage) as caught:
        DeliveryReport(DAEMON, DOCTOR, "mx.pli.test", ())
    assert caught.value.code == "dsn-no-recipient"
    with pytest.raises(InvalidMessage) as caught:
        DeliveryReport(DAEMON, DOCTOR, " ", (bounce(PATIENT, BounceReason.TOO_LARGE),))
    assert caught.value.code == "dsn-missing-field"


# --- MDN --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("error", list(IntegrationError))
def test_every_national_integration_error_round_trips(error: IntegrationError, lang: str) -> None:
    mdn = integration_receipt(
        system=DMP,
        notify=DOCTOR,
        original_message_id=ORIGINAL_ID,
        error=error,
        original_subject="XDM/1.0/DDM+Compte rendu DUPONT Jean",
    )
    raw = build_mdn(mdn, date=NOW, lang=lang)  # type: ignore[arg-type]
    msg = well_formed(raw)
    assert msg.get_param("report-type") == "disposition-notification"
    assert str(msg["Subject"]).startswith(f"[KO Intégration système !][{int(error)}]")
    assert str(msg["In-Reply-To"]) == ORIGINAL_ID
    fields = report_fields(msg)
    assert str(fields["Disposition"]) == (
        f"automatic-action/MDN-sent-automatically; processed/Error: {int(error)}^{error.label()}"
    )
    assert str(fields["Final-Recipient"]) == f"rfc822; {DMP}"
    assert str(fields["Original-Message-ID"]) == ORIGINAL_ID
    back = parse_mdn(raw)
    assert back == mdn
    assert back.error is error


def report_fields(msg: EmailMessage) -> Message:
    report = list(msg.iter_parts())[1]
    assert report.get_content_type() == "message/disposition-notification"
    payload = report.get_payload()
    assert isinstance(payload, list)
    (fields,) = payload
    assert isinstance(fields, Message)
    return fields


def test_the_national_codes_are_900_to_906() -> None:
    assert [int(e) for e in IntegrationError] == list(range(900, 907))
    assert IntegrationError.UNKNOWN_PATIENT.label() == "Patient inconnu"
    assert IntegrationError.INS_MISMATCH.label("en") == "INS does not match"


def test_a_successful_integration_says_processed() -> None:
    mdn = integration_receipt(system=DMP, notify=DOCTOR, original_message_id=ORIGINAL_ID)
    raw = build_mdn(mdn, date=NOW)
    msg = well_formed(raw)
    fields = report_fields(msg)
    assert str(fields["Disposition"]) == "automatic-action/MDN-sent-automatically; processed"
    assert not str(msg["Subject"]).startswith(KO_SUBJECT_PREFIX)
    assert parse_mdn(raw) == mdn


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_patients_read_receipt_round_trips(lang: str) -> None:
    mdn = read_receipt(
        reader=PATIENT,
        notify=DOCTOR,
        original_message_id=ORIGINAL_ID,
        original_subject="Vos résultats",
    )
    raw = build_mdn(mdn, date=NOW, lang=lang)  # type: ignore[arg-type]
    msg = well_formed(raw)
    assert str(msg["Subject"]) == (
        "Accusé de lecture : Vos résultats" if lang == "fr" else "Read: Vos résultats"
    )
    back = parse_mdn(raw)
    assert back == mdn
    assert back.disposition is DispositionType.DISPLAYED
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    assert ("a été ouvert" if lang == "fr" else "was opened") in body.get_content()


@pytest.mark.parametrize("disposition", list(DispositionType))
def test_every_disposition_and_mode_round_trips(disposition: DispositionType) -> None:
    mdn = DispositionNotification(
        sender=PATIENT,
        recipient=DOCTOR,
        final_recipient=PATIENT,
        original_message_id=ORIGINAL_ID,
        disposition=disposition,
        action_mode=ActionMode.MANUAL,
        sending_mode=SendingMode.MANUAL,
        original_recipient=PATIENT,
        error=IntegrationError.OTHER,
        error_label="Integration refusee : format inattendu, voir le journal du systeme DPI",
    )
    raw = build_mdn(mdn, date=NOW)
    msg = strict(raw)
    assert "Auto-Submitted" not in msg
    assert parse_mdn(raw) == mdn


def test_report_fields_are_written_on_one_ascii_line_each() -> None:
    mdn = integration_receipt(
        system=DMP, notify=DOCTOR, original_message_id=ORIGINAL_ID, error=IntegrationError.OTHER,
        error_label="a label long enough to be folded by any header writer that folds at 78",
    )  # fmt: skip
    raw = build_mdn(mdn, date=NOW)
    assert (
        b"\r\nDisposition: automatic-action/MDN-sent-automatically; processed/Error: 906^a label"
        b" long enough to be folded by any header writer that folds at 78\r\n"
    ) in raw
    accented = integration_receipt(
        system=DMP, notify=DOCTOR, original_message_id=ORIGINAL_ID, error=IntegrationError.OTHER,
        error_label="Intégration refusée",
    )  # fmt: skip
    with pytest.raises(InvalidMessage) as caught:
        build_mdn(accented, date=NOW)
    assert caught.value.code == "mdn-invalid-field"


def test_an_encoded_label_from_another_system_is_decoded() -> None:
    raw = NATIONAL_MDN.replace(
        b"902^Patient inconnu", b"906^=?utf-8?q?Int=C3=A9gration_refus=C3=A9e?="
    )
    assert parse_mdn(raw).error_label == "Intégration refusée"


NATIONAL_MDN = b"""From: dmp-integration@ch-exemple.pli.test
To: sophie.martin@medecin.pli.test
Subject: =?utf-8?q?=5BKO_Int=C3=A9gration_syst=C3=A8me_!=5D=5B902=5D_CR?=
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="x"

--x
Content-Type: text/plain; charset=utf-8

Erreur d'integration.
--x
Content-Type: message/disposition-notification

Reporting-UA: integrateur.ch-exemple.pli.test; LogicielDPI 4.2
Final-Recipient: rfc822;dmp-integration@ch-exemple.pli.test
Original-Message-ID: <cr-9@medecin.pli.test>
Disposition: automatic-action/MDN-sent-automatically;
 processed/Error: 902^Patient inconnu
--x--
"""


def test_a_national_mdn_from_another_system_is_read() -> None:
    mdn = receipt.parse_receipt(NATIONAL_MDN.replace(b"\n", b"\r\n"))
    assert isinstance(mdn, DispositionNotification)
    assert mdn.error is IntegrationError.UNKNOWN_PATIENT
    assert mdn.error_label == "Patient inconnu"
    assert mdn.original_message_id == "<cr-9@medecin.pli.test>"
    assert mdn.reporting_ua == "integrateur.ch-exemple.pli.test; LogicielDPI 4.2"
    assert mdn.final_recipient == DMP


def test_the_rfc_3798_error_form_is_read_too() -> None:
    raw = NATIONAL_MDN.replace(
        b"processed/Error: 902^Patient inconnu", b"processed/error\nError: 904^INS non concordant"
    )
    mdn = parse_mdn(raw)
    assert mdn.error is IntegrationError.INS_MISMATCH
    assert mdn.error_label == "INS non concordant"
    free = NATIONAL_MDN.replace(
        b"processed/Error: 902^Patient inconnu", b"processed/error\nError: disk full"
    )
    assert (parse_mdn(free).error, parse_mdn(free).error_label) == (
        IntegrationError.OTHER,
        "disk full",
    )
    bare = NATIONAL_MDN.replace(b"processed/Error: 902^Patient inconnu", b"processed/error")
    assert parse_mdn(bare).error_label == IntegrationError.OTHER.label()
    other = NATIONAL_MDN.replace(b"processed/Error: 902^Patient inconnu", b"processed/expired")
    assert parse_mdn(other).error is None


FINAL = b"Final-Recipient: rfc822;dmp-integration"
SENDING = b"automatic-action/MDN-sent-automatically;"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        (b"902^Patient", b"907^Patient", "mdn-unknown-error-code"),
        (SENDING, b"automatic-action;", "mdn-invalid-disposition"),
        (b"processed/Error", b"eaten/Error", "mdn-invalid-disposition"),
        (b"automatic-action/", b"robotic-action/", "mdn-invalid-disposition"),
        (FINAL + b"@ch-exemple.pli.test\n", b"", "mdn-missing-field"),
        (FINAL, b"Final-Recipient: rfc822;not an address ", "mdn-invalid-field"),
        (
            b"Disposition:",
            b"Original-Message-ID: <again@pli.test>\nDisposition:",
            "mdn-invalid-field",
        ),
        (b"message/disposition-notification", b"text/plain", "mdn-missing-report"),
        (b"=disposition-notification", b"=delivery-status", "mdn-not-report"),
        (
            b"To: sophie.martin@medecin.pli.test",
            b"To: a@pli.test, b@pli.test",
            "receipt-invalid-header",
        ),
    ],
)
def test_malformed_mdns_are_refused_with_a_precise_code(old: bytes, new: bytes, code: str) -> None:
    raw = NATIONAL_MDN.replace(old, new)
    assert raw != NATIONAL_MDN
    with pytest.raises(InvalidMessage) as caught:
        parse_mdn(raw)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "changes",
    [
        {"error_label": "label without error"},
        {"error": IntegrationError.OTHER, "error_label": "a^b"},
        {"error": IntegrationError.OTHER, "error_label": "two\r\nlines"},
        {"original_message_id": "<a@b>\r\nBcc: victim@pli.test"},
    ],
)
def test_an_mdn_that_could_inject_fields_cannot_be_built(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidMessage) as caught:
        fields: dict[str, object] = {"original_message_id": ORIGINAL_ID, **changes}
        DispositionNotification(PATIENT, DOCTOR, PATIENT, **fields)  # type: ignore[arg-type]
    assert caught.value.code == "mdn-invalid-field"


# --- the automatic MDN rule --------------------------------------------------------------


SOPHIE = "sophie.martin@medecin.pli.test"
RP = ("Return-Path", f"<{SOPHIE}>")
DNT = ("Disposition-Notification-To", SOPHIE)


def dnt(value: str) -> tuple[str, str]:
    return ("Disposition-Notification-To", value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([RP, DNT], True),
        ([("Return-Path", "<Sophie.Martin@MEDECIN.pli.test>"), dnt(f"Dr Martin <{SOPHIE}>")], True),
        ([RP, dnt("secretariat@medecin.pli.test")], False),
        ([DNT], False),
        ([RP], False),
        ([("Return-Path", "<>"), DNT], False),
        ([RP, dnt(f"{SOPHIE}, other@medecin.pli.test")], False),
        ([RP, ("Return-Path", "<other@medecin.pli.test>"), DNT], False),
        (
            [RP, DNT, ("Content-Type", "multipart/report; report-type=disposition-notification")],
            False,
        ),
        ([("Return-Path", "<garbage"), dnt("@@@")], False),
    ],
)
def test_no_automatic_mdn_unless_the_receipt_goes_back_to_the_return_path(
    headers: list[tuple[str, str]], expected: bool
) -> None:
    assert should_send_automatic_mdn(headers) is expected


def test_the_rule_reads_a_parsed_message_too() -> None:
    msg = EmailMessage()
    msg["Return-Path"] = "<sophie.martin@medecin.pli.test>"
    msg["Disposition-Notification-To"] = "sophie.martin@medecin.pli.test"
    msg.set_content("Vos résultats sont arrivés.")
    assert should_send_automatic_mdn(msg)
    reparsed = strict(msg.as_bytes())
    assert should_send_automatic_mdn(reparsed)
    del msg["Return-Path"]
    msg["Return-Path"] = "<attacker@elsewhere.test>"
    assert not should_send_automatic_mdn(msg)


# --- the kind -----------------------------------------------------------------------------


def test_the_receipt_kind_recognises_reports_only() -> None:
    assert receipt.SPEC.kind is MessageKind.RECEIPT
    plain = EmailMessage()
    plain.set_content("hello")
    assert not receipt.recognises(plain)
    assert receipt.recognises(strict(build_dsn(a_bounce(), date=NOW)))
    feedback = strict(
        build_dsn(a_bounce(), date=NOW).replace(b'delivery-status"', b'feedback-report"')
    )
    assert not receipt.recognises(feedback)
    with pytest.raises(InvalidMessage) as caught:
        receipt.parse_receipt(plain.as_bytes())
    assert caught.value.code == "receipt-not-report"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_arbitrary_bytes_are_refused_with_invalid_message_only(raw: bytes) -> None:
    for parse in (parse_dsn, parse_mdn, receipt.parse_receipt):
        try:
            parse(raw)
        except InvalidMessage:
            pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.sampled_from(["delivery-status", "disposition-notification"]))
def test_arbitrary_report_bodies_are_refused_with_invalid_message_only(
    body: str, kind: str
) -> None:
    raw = (
        "From: a@pli.test\r\nTo: b@pli.test\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={kind}; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: message/{kind}\r\n\r\n{body}\r\n--b--\r\n"
    ).encode("utf-8", "surrogateescape")
    try:
        receipt.parse_receipt(raw)
    except InvalidMessage:
        pass


_subjects = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"),
    max_size=80,
)
_ascii = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="^"),
    max_size=80,
)


@settings(max_examples=100, deadline=None)
@given(_subjects, _ascii, st.sampled_from(list(IntegrationError)), st.sampled_from(["fr", "en"]))
def test_any_integration_receipt_round_trips(
    subject: str, label: str, error: IntegrationError, lang: str
) -> None:
    mdn = integration_receipt(
        system=DMP,
        notify=DOCTOR,
        original_message_id=ORIGINAL_ID,
        error=error,
        error_label=label,
        original_subject=subject,
    )
    raw = build_mdn(mdn, date=NOW, lang=lang)  # type: ignore[arg-type]
    strict(raw)
    assert parse_mdn(raw) == mdn


@settings(max_examples=100, deadline=None)
@given(_subjects, _ascii, st.sampled_from(["fr", "en"]))
def test_any_delivery_report_round_trips(subject: str, diagnostic: str, lang: str) -> None:
    report = a_bounce(
        RecipientStatus(PATIENT, DsnAction.FAILED, "5.1.1", diagnostic=diagnostic),
    )
    report = DeliveryReport(
        report.sender,
        report.recipient,
        report.reporting_mta,
        report.recipients,
        original_message_id=ORIGINAL_ID,
        original_subject=subject,
    )
    raw = build_dsn(report, date=NOW, lang=lang)  # type: ignore[arg-type]
    strict(raw)
    assert parse_dsn(raw) == report
