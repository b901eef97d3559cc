"""Consent messages (build/parse, signatures) and the consent registry (grants, re-wrap)."""

from __future__ import annotations

import base64
import email
import email.policy
import importlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import mailparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crypto
from messaging.consent import ConsentRegistry, DocumentRef, SharedSlot, check_consent_date
from messaging.errors import InvalidMessage
from messaging.kinds.consent import (
    CONTEXT_RESPONSE,
    CONTEXT_REVOCATION,
    MEDIA_REQUEST,
    MEDIA_RESPONSE,
    MEDIA_REVOCATION,
    SPEC_REQUEST,
    SPEC_RESPONSE,
    SPEC_REVOCATION,
    ConsentRequest,
    ConsentResponse,
    ConsentRevocation,
    Decision,
    Scope,
    ScopeKind,
    answer,
    build_request,
    build_response,
    build_revocation,
    canonical_json,
    parse_request,
    parse_response,
    parse_revocation,
    revoke,
)
from messaging.types import Address, MessageKind

DOCTOR = Address.parse("sophie.martin@medecin.pli.test")
OTHER_DOCTOR = Address.parse("paul.durand@medecin.pli.test")
PATIENT = Address.parse("277076322082910@patient.pli.test")
OTHER_PATIENT = Address.parse("180057512345602@patient.pli.test")
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
STRICT = email.policy.default.clone(raise_on_defect=True)


@pytest.fixture(scope="module")
def patient_keys() -> crypto.MailboxKeys:
    return crypto.generate_keys()


@pytest.fixture(scope="module")
def doctor_keys() -> crypto.MailboxKeys:
    return crypto.generate_keys()


def a_request(scope: Scope | None = None, *, days: int = 30, at: datetime = T0) -> ConsentRequest:
    return ConsentRequest.new(
        professional=DOCTOR,
        patient=PATIENT,
        scope=scope or Scope.record(),
        purpose="Suivi cardiologique après l'opération",
        duration_days=days,
        at=at,
    )


def mime_with(media_type: str, payload: bytes, *, sender: Address, version: str = "1") -> bytes:
    """A hand-made message carrying ``payload`` as its structured part."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = str(sender)
    msg["To"] = str(DOCTOR)
    msg["Subject"] = "consent"
    msg["Message-ID"] = "<x@pli.test>"
    msg.set_content("texte")
    maintype, _, subtype = media_type.partition("/")
    msg.add_attachment(payload, maintype=maintype, subtype=subtype, params={"version": version})
    return msg.as_bytes()


def json_of(value: dict[str, object]) -> bytes:
    return json.dumps(value).encode()


# --- messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [Scope.record(), Scope.of_categories("11488-4", "34133-9"), Scope.of_document("env-42")],
)
def test_a_consent_request_round_trips_through_mime(scope: Scope):
    request = a_request(scope)
    raw = build_request(request, message_id="<r1@pli.test>", sender_name="Dr_Sophie_MARTIN_CHU")
    assert parse_request(raw) == request
    strict = email.message_from_bytes(raw, policy=STRICT)
    assert strict["X-Pli-Type"] == "consent-request"
    assert strict["X-MSS-NIL"]
    assert strict.get_body(("plain",)) is not None
    assert SPEC_REQUEST.recognises(strict)
    assert not SPEC_RESPONSE.recognises(strict)


def test_a_request_reads_in_french_by_default_and_in_english_on_request():
    request = a_request(Scope.of_categories("11488-4"))
    french = email.message_from_bytes(build_request(request, message_id="<a@x.fr>"), policy=STRICT)
    english = email.message_from_bytes(
        build_request(request, message_id="<a@x.fr>", lang="en"), policy=STRICT
    )
    fr_body = french.get_body(("plain",))
    en_body = english.get_body(("plain",))
    assert isinstance(fr_body, EmailMessage) and isinstance(en_body, EmailMessage)
    assert "demande votre accord" in fr_body.get_content()
    assert fr_body["Content-Language"] == "fr"
    assert "asks for your consent" in en_body.get_content()
    assert "11488-4" in en_body.get_content()
    assert english["Subject"].startswith("Consent request")
    with pytest.raises(ValueError, match="not available"):
        build_request(request, message_id="<a@x.fr>", lang="de")


def test_a_second_independent_parser_reads_the_consent_messages(patient_keys):
    request = a_request()
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0 + timedelta(hours=1))
    for raw, media in (
        (build_request(request, message_id="<a@x.fr>"), MEDIA_REQUEST),
        (build_response(response, message_id="<b@x.fr>"), MEDIA_RESPONSE),
    ):
        parsed = mailparser.parse_from_bytes(raw)
        assert parsed.defects == []
        assert [a["mail_content_type"] for a in parsed.attachments] == [media]
        assert parsed.text_plain


def test_the_structured_part_is_canonical_json_with_its_version():
    request = a_request(Scope.of_categories("b-2", "a-1"))
    msg = email.message_from_bytes(build_request(request, message_id="<a@x.fr>"), policy=STRICT)
    (part,) = [p for p in msg.walk() if p.get_content_type() == MEDIA_REQUEST]
    assert part.get_param("version") == "1"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload == canonical_json(json.loads(payload))
    assert json.loads(payload)["scope"] == {"kind": "categories", "categories": ["a-1", "b-2"]}


def test_times_are_kept_to_the_second_in_utc():
    request = a_request(at=datetime(2026, 11, 22, 10, 0, 0, 999999, tzinfo=UTC))
    assert request.requested_at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    with pytest.raises(InvalidMessage):
        a_request(at=datetime(2026, 11, 22))  # naive


def test_a_signed_response_round_trips_and_verifies(patient_keys):
    request = a_request()
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0 + timedelta(days=1))
    raw = build_response(response, message_id="<b@x.fr>", lang="en", in_reply_to="<a@x.fr>")
    assert parse_response(raw, [patient_keys.signing_public]) == response
    assert response.request_hash == request.digest()
    assert email.message_from_bytes(raw, policy=STRICT)["In-Reply-To"] == "<a@x.fr>"


def test_a_response_signed_with_an_earlier_key_of_the_patient_is_accepted(patient_keys):
    old = crypto.generate_keys()
    response = answer(a_request(), Decision.REFUSE, old.signing_key, T0)
    raw = build_response(response, message_id="<b@x.fr>")
    keys = [patient_keys.signing_public, old.signing_public]
    assert parse_response(raw, keys).decision is Decision.REFUSE


def test_an_unsigned_consent_response_is_refused(patient_keys):
    response = answer(a_request(), Decision.GRANT, patient_keys.signing_key, T0)
    body = response.signed_body()  # every field, no signature
    raw = mime_with(MEDIA_RESPONSE, json_of(body), sender=PATIENT)
    with pytest.raises(InvalidMessage) as refused:
        parse_response(raw, [patient_keys.signing_public])
    assert refused.value.code == "consent-unsigned"
    raw = mime_with(MEDIA_RESPONSE, json_of({**body, "signature": ""}), sender=PATIENT)
    with pytest.raises(InvalidMessage) as refused:
        parse_response(raw, [patient_keys.signing_public])
    assert refused.value.code == "consent-unsigned"
    with pytest.raises(InvalidMessage) as refused:
        build_response(replace(response, signature=b""), message_id="<b@x.fr>")
    assert refused.value.code == "consent-unsigned"


def test_a_response_signed_by_someone_else_is_refused_as_forged(patient_keys):
    mallory = crypto.generate_keys()
    response = answer(a_request(), Decision.GRANT, mallory.signing_key, T0)
    raw = build_response(response, message_id="<b@x.fr>")
    with pytest.raises(InvalidMessage) as refused:
        parse_response(raw, [patient_keys.signing_public])
    assert refused.value.code == "consent-forged"


def test_a_refusal_turned_into_a_grant_is_refused_as_forged(patient_keys):
    refusal = answer(a_request(), Decision.REFUSE, patient_keys.signing_key, T0)
    body = refusal.to_json()
    body["decision"] = "grant"
    raw = mime_with(MEDIA_RESPONSE, json_of(body), sender=PATIENT)
    with pytest.raises(InvalidMessage) as refused:
        parse_response(raw, [patient_keys.signing_public])
    assert refused.value.code == "consent-forged"


@pytest.mark.parametrize("signature", ["AAAA", "AB", "not base64!", "A" * 86 + "=", 42])
def test_a_malformed_signature_is_refused_as_forged(patient_keys, signature: object):
    response = answer(a_request(), Decision.GRANT, patient_keys.signing_key, T0)
    body = {**response.to_json(), "signature": signature}
    raw = mime_with(MEDIA_RESPONSE, json_of(body), sender=PATIENT)
    with pytest.raises(InvalidMessage) as refused:
        parse_response(raw, [patient_keys.signing_public])
    assert refused.value.code == "consent-forged"


def test_a_signature_for_a_response_cannot_be_replayed_as_a_revocation(patient_keys):
    response = answer(a_request(), Decision.GRANT, patient_keys.signing_key, T0)
    revocation = revoke(response, patient_keys.signing_key, T0 + timedelta(days=1))
    stolen = replace(revocation, signature=response.signature)
    raw = mime_with(MEDIA_REVOCATION, json_of(stolen.to_json()), sender=PATIENT)
    with pytest.raises(InvalidMessage) as refused:
        parse_revocation(raw, [patient_keys.signing_public])
    assert refused.value.code == "consent-forged"


def test_a_revocation_round_trips_and_must_be_signed(patient_keys):
    response = answer(a_request(), Decision.GRANT, patient_keys.signing_key, T0)
    revocation = revoke(response, patient_keys.signing_key, T0 + timedelta(days=2))
    raw = build_revocation(revocation, message_id="<c@x.fr>")
    assert parse_revocation(raw, [patient_keys.signing_public]) == revocation
    assert SPEC_REVOCATION.recognises(email.message_from_bytes(raw, policy=STRICT))
    unsigned = mime_with(MEDIA_REVOCATION, json_of(revocation.signed_body()), sender=PATIENT)
    with pytest.raises(InvalidMessage) as refused:
        parse_revocation(unsigned, [patient_keys.signing_public])
    assert refused.value.code == "consent-unsigned"
    with pytest.raises(InvalidMessage):
        build_revocation(replace(revocation, signature=b""), message_id="<c@x.fr>")
    refusal = answer(a_request(), Decision.REFUSE, patient_keys.signing_key, T0)
    with pytest.raises(InvalidMessage, match="only a grant"):
        revoke(refusal, patient_keys.signing_key, T0)


def test_the_sender_must_be_the_author_the_json_names(patient_keys):
    request = a_request()
    raw = mime_with(MEDIA_REQUEST, canonical_json(request.to_json()), sender=OTHER_DOCTOR)
    with pytest.raises(InvalidMessage) as refused:
        parse_request(raw)
    assert refused.value.code == "consent-sender-mismatch"
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0)
    raw = mime_with(MEDIA_RESPONSE, canonical_json(response.to_json()), sender=OTHER_PATIENT)
    with pytest.raises(InvalidMessage) as refused:
        parse_response(raw, [patient_keys.signing_public])
    assert refused.value.code == "consent-sender-mismatch"


def request_json(**changes: object) -> bytes:
    body: dict[str, object] = {**a_request().to_json(), **changes}
    return json_of({k: v for k, v in body.items() if v is not None})


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "consent-schema"),
        (b"[1]", "consent-schema"),
        (b"\xff\xfe", "consent-schema"),
        (request_json(duration_days=30.0), "consent-schema"),
        (request_json(duration_days=0), "consent-schema"),
        (request_json(duration_days=True), "consent-schema"),
        (request_json(duration_days=3651), "consent-schema"),
        (request_json(purpose=""), "consent-schema"),
        (request_json(purpose="a\nb"), "consent-schema"),
        (request_json(purpose="x" * 501), "consent-schema"),
        (request_json(extra="field"), "consent-schema"),
        (request_json(requested_at=None), "consent-schema"),
        (request_json(requested_at="2026-11-22T09:00:00+01:00"), "consent-schema"),
        (request_json(requested_at="2026-02-30T09:00:00Z"), "consent-schema"),
        (request_json(patient="277076322082910@PATIENT.pli.test"), "consent-schema"),
        (request_json(patient="not an address"), "consent-schema"),
        (request_json(patient=7), "consent-schema"),
        (request_json(request_id="../etc"), "consent-schema"),
        (request_json(scope={"kind": "everything"}), "consent-schema"),
        (request_json(scope={"kind": "record", "document": "x"}), "consent-schema"),
        (request_json(scope={"kind": "categories", "categories": []}), "consent-schema"),
        (request_json(scope={"kind": "categories", "categories": ["a", "a"]}), "consent-schema"),
        (request_json(scope={"kind": "categories", "categories": "a"}), "consent-schema"),
        (request_json(scope={"kind": "document"}), "consent-schema"),
        (request_json(scope=[]), "consent-schema"),
        (request_json(type="consent-response"), "consent-schema"),
        (request_json(version=2), "consent-version"),
        (b'{"version":1,"version":1}', "consent-schema"),
        (b'{"n":NaN}', "consent-schema"),
        (b'{"s":"\\ud800"}', "consent-schema"),
        (b"[" * 100_000 + b"]" * 100_000, "consent-too-large"),
    ],
)
def test_malformed_consent_requests_are_refused_with_a_precise_code(payload: bytes, code: str):
    with pytest.raises(InvalidMessage) as refused:
        parse_request(mime_with(MEDIA_REQUEST, payload, sender=DOCTOR))
    assert refused.value.code == code


def test_deeply_nested_json_is_refused_without_crashing():
    payload = b"[" * 30_000 + b"]" * 30_000
    with pytest.raises(InvalidMessage) as refused:
        parse_request(mime_with(MEDIA_REQUEST, payload, sender=DOCTOR))
    assert refused.value.code == "consent-schema"


def test_a_message_without_or_with_two_structured_parts_is_refused():
    with pytest.raises(InvalidMessage) as refused:
        parse_request(b"From: a@b.fr\r\nSubject: x\r\n\r\nhello\r\n")
    assert refused.value.code == "consent-structure"
    raw = build_request(a_request(), message_id="<a@x.fr>")
    msg = email.message_from_bytes(raw, policy=email.policy.SMTP)
    assert isinstance(msg, EmailMessage)
    msg.add_attachment(b"{}", maintype="application", subtype="vnd.pli.consent-request+json")
    with pytest.raises(InvalidMessage) as refused:
        parse_request(msg.as_bytes())
    assert refused.value.code == "consent-structure"


def test_an_unknown_schema_version_is_refused():
    payload = canonical_json(a_request().to_json())
    with pytest.raises(InvalidMessage) as refused:
        parse_request(mime_with(MEDIA_REQUEST, payload, sender=DOCTOR, version="2"))
    assert refused.value.code == "consent-version"


def test_a_request_to_oneself_and_inconsistent_scopes_cannot_be_built():
    with pytest.raises(InvalidMessage):
        ConsentRequest.new(
            professional=PATIENT,
            patient=PATIENT,
            scope=Scope.record(),
            purpose="x",
            duration_days=1,
            at=T0,
        )
    with pytest.raises(InvalidMessage):
        Scope(ScopeKind.CATEGORIES, categories=frozenset({"bad code"}))
    with pytest.raises(InvalidMessage):
        Scope(ScopeKind.DOCUMENT)
    with pytest.raises(InvalidMessage):
        Scope(ScopeKind.RECORD, categories=frozenset({"a"}))


def test_canonical_json_refuses_what_it_cannot_spell_one_way():
    for value in ({"f": 1.5}, {"n": 2**53}, {"c": "\x00"}, {"k": object()}, {1: "x"}):
        with pytest.raises(InvalidMessage) as refused:
            canonical_json(value)  # type: ignore[arg-type]
        assert refused.value.code == "consent-schema"
    assert canonical_json({"b": [True, -1, "é"], "a": {}}) == '{"a":{},"b":[true,-1,"é"]}'.encode()


def test_a_consent_request_survives_sealing_and_opening(patient_keys, doctor_keys):
    request = a_request()
    raw = build_request(request, message_id="<a@x.fr>")
    header = crypto.RoutingHeader(
        envelope_id="e1",
        thread_id="t1",
        kind="consent-request",
        sender=str(DOCTOR),
        recipients=(str(PATIENT),),
        size=len(raw),
        date="2026-11-22T09:00:00Z",
        provenance=crypto.PROVENANCE_E2E,
        signer=doctor_keys.signing_public,
    )
    envelope, sealed = crypto.seal_bytes(
        header,
        raw,
        signer=doctor_keys.signing_key,
        recipients=[patient_keys.encryption_public],
    )
    opened, _ = crypto.open_bytes(envelope, sealed.slots[0], patient_keys)
    assert parse_request(opened) == request


# --- canonical encodings (Hypothesis) ------------------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)
_json = st.recursive(
    st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_id = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
_code = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,10}", fullmatch=True)
_scope = st.one_of(
    st.just(Scope.record()),
    st.builds(Scope.of_document, _id),
    st.frozensets(_code, min_size=1, max_size=5).map(lambda c: Scope.of_categories(*c)),
)
_requests = st.builds(
    ConsentRequest,
    request_id=_id,
    professional=st.just(DOCTOR),
    patient=st.just(PATIENT),
    scope=_scope,
    purpose=st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=80
    ),
    duration_days=st.integers(1, 3650),
    requested_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)


@given(_json.filter(lambda v: isinstance(v, dict)))
def test_canonical_json_is_a_fixed_point_of_parsing(value: dict[str, object]):
    encoded = canonical_json(value)
    assert json.loads(encoded) == value
    assert canonical_json(json.loads(encoded)) == encoded


@given(_requests)
def test_any_request_round_trips_through_json_and_mime(request: ConsentRequest):
    assert ConsentRequest.from_json(json.loads(canonical_json(request.to_json()))) == request
    assert parse_request(build_request(request, message_id="<h@x.fr>")) == request


@given(_requests, _requests)
def test_request_digests_differ_exactly_when_requests_differ(a: ConsentRequest, b: ConsentRequest):
    assert (a.digest() == b.digest()) == (a == b)


# --- registry ------------------------------------------------------------------------------


def doc(document_id: str, *categories: str, masked: frozenset[Address] = frozenset()):
    return DocumentRef(document_id, PATIENT, frozenset(categories), masked)


def registry_for(keys: crypto.MailboxKeys) -> ConsentRegistry:
    return ConsentRegistry(PATIENT, [keys.signing_public])


def test_without_a_grant_a_professional_cannot_read_and_with_one_they_can(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    report = doc("d1", "11488-4")
    assert not registry.can_read(DOCTOR, report, T0 + timedelta(hours=1))
    assert registry.pending_requests() == [request]
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0 + timedelta(hours=2))
    grant = registry.add_response(response)
    assert grant is not None and grant.grant_id == request.request_id
    assert registry.pending_requests() == []
    assert not registry.can_read(DOCTOR, report, T0 + timedelta(hours=1))  # before the answer
    assert registry.can_read(DOCTOR, report, T0 + timedelta(hours=2))
    assert registry.grant_for(DOCTOR, report, T0 + timedelta(days=1)) == grant
    assert not registry.can_read(OTHER_DOCTOR, report, T0 + timedelta(days=1))
    foreign = DocumentRef("d9", OTHER_PATIENT, frozenset())
    assert not registry.can_read(DOCTOR, foreign, T0 + timedelta(days=1))


def test_a_refusal_grants_nothing(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    assert (
        registry.add_response(answer(request, Decision.REFUSE, patient_keys.signing_key, T0))
        is None
    )
    assert not registry.can_read(DOCTOR, doc("d1"), T0 + timedelta(hours=1))
    assert registry.grants() == [] and registry.pending_requests() == []


def test_a_grant_ends_with_its_duration(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request(days=7)
    registry.add_request(request)
    registry.add_response(answer(request, Decision.GRANT, patient_keys.signing_key, T0))
    assert registry.can_read(DOCTOR, doc("d1"), T0 + timedelta(days=7) - timedelta(seconds=1))
    assert not registry.can_read(DOCTOR, doc("d1"), T0 + timedelta(days=7))
    assert registry.active_grants(T0 + timedelta(days=8)) == []


def test_scopes_cover_the_whole_record_some_categories_or_one_document(patient_keys):
    registry = registry_for(patient_keys)
    at = T0 + timedelta(hours=1)
    for scope in (Scope.of_categories("11488-4"), Scope.of_document("d3")):
        request = replace(a_request(scope), professional=OTHER_DOCTOR if scope.document else DOCTOR)
        registry.add_request(request)
        registry.add_response(answer(request, Decision.GRANT, patient_keys.signing_key, T0))
    assert registry.can_read(DOCTOR, doc("d1", "11488-4", "x"), at)
    assert not registry.can_read(DOCTOR, doc("d2", "34133-9"), at)
    assert not registry.can_read(DOCTOR, doc("d3"), at)
    assert registry.can_read(OTHER_DOCTOR, doc("d3"), at)
    assert not registry.can_read(OTHER_DOCTOR, doc("d1", "11488-4"), at)


def test_a_masked_document_stays_unreadable_whatever_the_grant(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    registry.add_response(answer(request, Decision.GRANT, patient_keys.signing_key, T0))
    at = T0 + timedelta(hours=1)
    assert not registry.can_read(DOCTOR, doc("d1", masked=frozenset({DOCTOR})), at)
    assert registry.can_read(DOCTOR, doc("d1", masked=frozenset({OTHER_DOCTOR})), at)


def seal_for(keys: crypto.MailboxKeys, body: bytes, envelope_id: str) -> tuple[bytes, bytes]:
    header = crypto.RoutingHeader(
        envelope_id=envelope_id,
        thread_id="t",
        kind="document",
        sender=str(OTHER_DOCTOR),
        recipients=(str(PATIENT),),
        size=len(body),
        date="2026-11-22T09:00:00Z",
        provenance=crypto.PROVENANCE_E2E,
        signer=keys.signing_public,
    )
    envelope, sealed = crypto.seal_bytes(
        header, body, signer=keys.signing_key, recipients=[keys.encryption_public]
    )
    return envelope, sealed.slots[0]


def test_consent_from_grant_to_revocation_with_real_keys(patient_keys, doctor_keys):
    """Acceptance 4 (pure part): no grant, grant, re-wrap, read, revoke, later documents."""
    registry = registry_for(patient_keys)
    request = a_request(days=90)
    registry.add_request(request)
    earlier_envelope, earlier_slot = seal_for(patient_keys, b"compte rendu 1", "d1")
    earlier = doc("d1")

    # No grant: nothing to share, nothing readable.
    assert (
        registry.share(
            patient_keys, DOCTOR, doctor_keys.encryption_public, [(earlier, earlier_slot)], T0
        )
        == []
    )

    granted_at = T0 + timedelta(days=1)
    response = answer(request, Decision.GRANT, patient_keys.signing_key, granted_at)
    registry.add_response(response)
    shared = registry.share(
        patient_keys, DOCTOR, doctor_keys.encryption_public, [(earlier, earlier_slot)], granted_at
    )
    assert [(s.grant_id, s.document_id, s.professional) for s in shared] == [
        (request.request_id, "d1", DOCTOR)
    ]
    plaintext, _ = crypto.open_bytes(earlier_envelope, shared[0].slot, doctor_keys)
    assert plaintext == b"compte rendu 1"

    # A document arriving during the grant is to share at the patient's next session.
    during = doc("d2")
    assert registry.documents_to_share(
        DOCTOR, [earlier, during], granted_at + timedelta(days=1), shared
    ) == [during]

    revoked_at = granted_at + timedelta(days=10)
    grant = registry.add_revocation(revoke(response, patient_keys.signing_key, revoked_at))
    assert grant.revocation is not None and grant.ends_at == revoked_at

    later_envelope, later_slot = seal_for(patient_keys, b"compte rendu 2", "d3")
    later = doc("d3")
    after = revoked_at + timedelta(hours=1)
    assert not registry.can_read(DOCTOR, later, after)
    assert (
        registry.share(
            patient_keys, DOCTOR, doctor_keys.encryption_public, [(later, later_slot)], after
        )
        == []
    )
    assert registry.documents_to_share(DOCTOR, [later], after) == []
    # What was given before revocation is deleted from the server; the key itself, once
    # given, cannot be taken back (docs/messages.md says so).
    assert registry.slots_to_delete(shared, {"d1": earlier}, after) == shared
    assert not registry.can_read(DOCTOR, earlier, after)


def test_slots_stay_while_a_grant_covers_them_and_go_when_it_expires(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request(days=2)
    registry.add_request(request)
    registry.add_response(answer(request, Decision.GRANT, patient_keys.signing_key, T0))
    slot = SharedSlot(request.request_id, "d1", DOCTOR, b"s" * 80)
    documents = {"d1": doc("d1")}
    assert registry.slots_to_delete([slot], documents, T0 + timedelta(days=1)) == []
    assert registry.slots_to_delete([slot], documents, T0 + timedelta(days=2)) == [slot]
    assert registry.slots_to_delete([slot], {}, T0 + timedelta(days=1)) == [slot]


def test_rewrap_slots_gives_the_professional_the_same_content_keys(patient_keys, doctor_keys):
    from messaging.consent import rewrap_slots

    envelope, slot = seal_for(patient_keys, b"ordonnance", "d1")
    new = rewrap_slots(patient_keys, {"d1": slot}, doctor_keys.encryption_public)
    assert crypto.open_bytes(envelope, new["d1"], doctor_keys)[0] == b"ordonnance"
    with pytest.raises(crypto.EnvelopeError):
        rewrap_slots(doctor_keys, {"d1": slot}, doctor_keys.encryption_public)


def test_sharing_needs_the_patients_own_keys(patient_keys, doctor_keys):
    registry = registry_for(patient_keys)
    with pytest.raises(ValueError, match="not the patient's"):
        registry.share(doctor_keys, DOCTOR, doctor_keys.encryption_public, [], T0)


def test_a_response_to_an_unknown_request_is_refused(patient_keys):
    registry = registry_for(patient_keys)
    response = answer(a_request(), Decision.GRANT, patient_keys.signing_key, T0)
    with pytest.raises(InvalidMessage) as refused:
        registry.add_response(response)
    assert refused.value.code == "consent-unknown-request"


def test_the_registry_checks_signatures_again(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    refusal = answer(request, Decision.REFUSE, patient_keys.signing_key, T0)
    with pytest.raises(InvalidMessage) as refused:
        registry.add_response(replace(refusal, decision=Decision.GRANT))
    assert refused.value.code == "consent-forged"
    with pytest.raises(InvalidMessage) as refused:
        registry.add_response(replace(refusal, signature=b""))
    assert refused.value.code == "consent-unsigned"


def test_a_response_must_answer_the_request_as_it_was_sent(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    edited = replace(request, purpose="Autre chose")
    with pytest.raises(InvalidMessage) as refused:
        registry.add_response(answer(edited, Decision.GRANT, patient_keys.signing_key, T0))
    assert refused.value.code == "consent-mismatch"
    with pytest.raises(InvalidMessage) as refused:
        registry.add_request(edited)
    assert refused.value.code == "consent-duplicate"
    registry.add_request(request)  # the same request again is harmless


def test_answers_and_revocations_are_checked_against_what_they_name(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    with pytest.raises(InvalidMessage) as refused:
        registry.add_response(
            answer(request, Decision.GRANT, patient_keys.signing_key, T0 - timedelta(seconds=1))
        )
    assert refused.value.code == "consent-time"
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0 + timedelta(hours=1))
    registry.add_response(response)
    registry.add_response(response)  # the same answer again is harmless
    again = answer(request, Decision.REFUSE, patient_keys.signing_key, T0 + timedelta(hours=2))
    with pytest.raises(InvalidMessage) as refused:
        registry.add_response(again)
    assert refused.value.code == "consent-already-answered"

    with pytest.raises(InvalidMessage) as refused:
        registry.add_revocation(revoke(response, patient_keys.signing_key, T0))
    assert refused.value.code == "consent-time"
    other = a_request()
    registry.add_request(other)
    other_refusal = answer(other, Decision.REFUSE, patient_keys.signing_key, T0)
    registry.add_response(other_refusal)
    moved = replace(
        revoke(response, patient_keys.signing_key, T0 + timedelta(days=1)),
        request_id=other.request_id,
    )
    with pytest.raises(InvalidMessage) as refused:
        registry.add_revocation(moved)
    assert refused.value.code == "consent-forged"
    with pytest.raises(InvalidMessage) as refused:
        registry.add_revocation(resign(moved, patient_keys))
    assert refused.value.code == "consent-not-granted"

    revocation = revoke(response, patient_keys.signing_key, T0 + timedelta(days=1))
    registry.add_revocation(revocation)
    registry.add_revocation(revocation)  # idempotent
    with pytest.raises(InvalidMessage) as refused:
        registry.add_revocation(revoke(response, patient_keys.signing_key, T0 + timedelta(days=2)))
    assert refused.value.code == "consent-already-revoked"


def resign(revocation: ConsentRevocation, keys: crypto.MailboxKeys) -> ConsentRevocation:
    """``revocation`` signed again by the patient, as their own client would."""
    message = CONTEXT_REVOCATION + canonical_json(revocation.signed_body())
    return replace(revocation, signature=keys.signing_key.sign(message))


def test_a_revocation_must_name_a_grant_of_this_patient(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0)
    with pytest.raises(InvalidMessage) as refused:
        registry.add_revocation(revoke(response, patient_keys.signing_key, T0))
    assert refused.value.code == "consent-not-granted"
    registry.add_response(response)
    # A revocation naming a different answer (here: forged hash, re-signed by the patient).
    edited = replace(response, response_id="other")
    wrong = revoke(edited, patient_keys.signing_key, T0 + timedelta(hours=1))
    with pytest.raises(InvalidMessage) as refused:
        registry.add_revocation(wrong)
    assert refused.value.code == "consent-mismatch"
    foreign = ConsentRegistry(OTHER_PATIENT, [patient_keys.signing_public])
    with pytest.raises(InvalidMessage) as refused:
        foreign.add_request(request)
    assert refused.value.code == "consent-wrong-patient"


def test_a_response_naming_another_professional_is_refused(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0)
    body = {**response.signed_body(), "professional": str(OTHER_DOCTOR)}
    signature = patient_keys.signing_key.sign(CONTEXT_RESPONSE + canonical_json(body))
    tampered = ConsentResponse.from_json(
        {**body, "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode()}
    )
    with pytest.raises(InvalidMessage) as refused:
        registry.add_response(tampered)
    assert refused.value.code == "consent-mismatch"


def test_a_registry_replayed_from_storage_reaches_the_same_state(patient_keys):
    request = a_request()
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0)
    revocation = revoke(response, patient_keys.signing_key, T0 + timedelta(days=3))
    registry = ConsentRegistry.replay(
        PATIENT, [patient_keys.signing_public], [request], [response], [revocation]
    )
    assert registry.patient == PATIENT
    (grant,) = registry.grants()
    assert grant.revocation == revocation
    assert registry.can_read(DOCTOR, doc("d"), T0 + timedelta(days=2))
    assert not registry.can_read(DOCTOR, doc("d"), T0 + timedelta(days=3))
    assert registry.grant("unknown") is None


def test_a_signed_date_far_from_the_arrival_time_is_flagged():
    assert check_consent_date(T0, T0 + timedelta(minutes=5)) == []
    (violation,) = check_consent_date(T0 - timedelta(days=3), T0)
    assert violation.code == "consent-time"


def test_the_kind_specs_name_their_kinds_and_versions():
    assert [s.kind for s in (SPEC_REQUEST, SPEC_RESPONSE, SPEC_REVOCATION)] == [
        MessageKind.CONSENT_REQUEST,
        MessageKind.CONSENT_RESPONSE,
        MessageKind.CONSENT_REVOCATION,
    ]
    assert {s.schema_version for s in (SPEC_REQUEST, SPEC_RESPONSE, SPEC_REVOCATION)} == {1}
    assert SPEC_REQUEST.description_fr and SPEC_REQUEST.description_en


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_refused_with_a_code_never_a_crash(data: bytes):
    with pytest.raises(InvalidMessage) as refused:
        parse_request(data)
    assert refused.value.code.startswith("consent-")


@given(st.data())
def test_a_flipped_byte_in_a_signed_response_never_yields_another_decision(data: st.DataObject):
    keys = crypto.generate_keys()
    response = answer(a_request(), Decision.GRANT, keys.signing_key, T0)
    raw = bytearray(build_response(response, message_id="<b@x.fr>"))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        parsed = parse_response(bytes(raw), [keys.signing_public])
    except InvalidMessage as refused:
        assert refused.code.startswith("consent-")
    else:
        assert parsed == response  # only a change outside the signed content survives


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"decision": "maybe"}, "consent-schema"),
        ({"decision": ["grant"]}, "consent-schema"),
        ({"request_hash": 7}, "consent-schema"),
        ({"request_hash": "AAAA"}, "consent-schema"),
        ({"answered_at": "yesterday"}, "consent-schema"),
        ({"version": 2}, "consent-version"),
        ({"type": "consent-request"}, "consent-schema"),
    ],
)
def test_malformed_responses_are_refused_with_a_precise_code(
    patient_keys, changes: dict[str, object], code: str
):
    response = answer(a_request(), Decision.GRANT, patient_keys.signing_key, T0)
    raw = mime_with(MEDIA_RESPONSE, json_of({**response.to_json(), **changes}), sender=PATIENT)
    with pytest.raises(InvalidMessage) as refused:
        parse_response(raw, [patient_keys.signing_public])
    assert refused.value.code == code


def test_a_revocation_with_a_malformed_hash_is_refused(patient_keys):
    response = answer(a_request(), Decision.GRANT, patient_keys.signing_key, T0)
    revocation = revoke(response, patient_keys.signing_key, T0)
    for bad in (7, "short"):
        body = {**revocation.to_json(), "response_hash": bad}
        raw = mime_with(MEDIA_REVOCATION, json_of(body), sender=PATIENT)
        with pytest.raises(InvalidMessage) as refused:
            parse_revocation(raw, [patient_keys.signing_public])
        assert refused.value.code == "consent-schema"


def test_a_revocation_naming_another_professional_is_refused(patient_keys):
    registry = registry_for(patient_keys)
    request = a_request()
    registry.add_request(request)
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0)
    registry.add_response(response)
    revocation = revoke(response, patient_keys.signing_key, T0 + timedelta(days=1))
    moved = resign(replace(revocation, professional=OTHER_DOCTOR), patient_keys)
    with pytest.raises(InvalidMessage) as refused:
        registry.add_revocation(moved)
    assert refused.value.code == "consent-mismatch"


def test_a_grant_never_covers_another_patients_document(patient_keys):
    request = a_request()
    registry = registry_for(patient_keys)
    registry.add_request(request)
    grant = registry.add_response(answer(request, Decision.GRANT, patient_keys.signing_key, T0))
    assert grant is not None
    assert grant.covers(doc("d1"))
    assert not grant.covers(DocumentRef("d1", OTHER_PATIENT))
    assert grant.ends_at - grant.starts_at == request.duration


def test_a_purpose_is_one_line_and_texts_exist_in_both_languages(patient_keys):
    with pytest.raises(InvalidMessage):
        replace(a_request(), purpose="deux\nlignes")
    request = a_request(Scope.of_document("env-7"))
    english = email.message_from_bytes(
        build_request(request, message_id="<a@x.fr>", lang="en"), policy=STRICT
    )
    body = english.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    assert "the document env-7" in body.get_content()
    response = answer(request, Decision.GRANT, patient_keys.signing_key, T0)
    revocation = revoke(response, patient_keys.signing_key, T0)
    raw = build_revocation(revocation, message_id="<c@x.fr>", lang="en")
    assert email.message_from_bytes(raw, policy=STRICT)["Subject"] == "Consent withdrawn"


@pytest.mark.parametrize(
    "module",
    [
        "messaging.kinds.consent",
        "messaging.consent",
        "messaging.access_history",
        "messaging.patient_rules",
        "messaging.retention",
    ],
)
def test_the_public_api_is_what_all_names(module: str):
    imported = importlib.import_module(module)
    public = {n for n in vars(imported) if not n.startswith("_")} - {"annotations"}
    exported = set(imported.__all__)
    assert exported <= public
    own = {
        n
        for n in public
        if getattr(getattr(imported, n), "__module__", None) == module and n not in exported
    }
    assert own == set(), f"public but not exported: {own}"
