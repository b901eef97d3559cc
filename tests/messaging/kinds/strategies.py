"""Hypothesis strategies for typed health messages."""

from __future__ import annotations

from datetime import date

from hypothesis import assume
from hypothesis import strategies as st

from messaging.ins import Ins, QualifiedIdentity, Sex, nir_key
from messaging.kinds.document import DocumentMessage, HealthDocument, Restriction
from messaging.kinds.issuer import Issuer
from messaging.kinds.prescription import MedicationLine, Prescription
from tests.messaging.kinds.samples import PATIENT_ADDRESS, SENDER, cda, pdf

# Printable text of any script, HL7 v2 delimiters and XML specials included on purpose.
_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn", "Cf", "Zl", "Zp", "Zs")
) | st.sampled_from(" ^|&~\\<>\"'")
words = st.text(_CHARS, min_size=1, max_size=24).filter(
    lambda s: s.strip() == s and s.isprintable() and bool(s)
)
optional_words = st.one_of(st.just(""), words)
multiline = st.lists(optional_words, max_size=4).map("\n".join)
days = st.dates(date(1900, 1, 1), date(2100, 12, 31))


@st.composite
def identities(draw: st.DrawFn) -> QualifiedIdentity:
    sex = draw(st.sampled_from([Sex.MALE, Sex.FEMALE]))
    birth = draw(st.dates(date(1920, 1, 1), date(2025, 12, 31)))
    department = draw(st.sampled_from(["75", "13", "69", "2A", "2B", "01", "95"]))
    commune, order = draw(st.integers(1, 999)), draw(st.integers(1, 999))
    nir = f"{1 if sex is Sex.MALE else 2}{birth.year % 100:02d}{birth.month:02d}"
    nir += f"{department}{commune:03d}{order:03d}"
    return QualifiedIdentity(Ins(nir, nir_key(nir)), draw(words), draw(words), birth, sex)


@st.composite
def document_messages(draw: st.DrawFn) -> DocumentMessage:
    patient = draw(identities())
    documents = []
    for number in range(draw(st.integers(1, 3))):
        code = draw(st.from_regex(r"\A[0-9]{4,5}-[0-9]\Z"))
        label = draw(optional_words)
        assume(label != code)  # a label equal to its code reads back as no label
        with_cda = draw(st.booleans())
        documents.append(
            HealthDocument(
                title=draw(words),
                type_code=code,
                type_label=label,
                pdf=pdf(f"document {number}"),
                cda=cda(patient, code=code, doc_id=f"DOC-{number}") if with_cda else None,
                date=draw(days),
                restrictions=draw(st.frozensets(st.sampled_from(list(Restriction)))),
                record_number=draw(optional_words),
            )
        )
    return DocumentMessage(
        sender=SENDER,
        recipients=(PATIENT_ADDRESS,),
        patient=patient,
        documents=tuple(documents),
        sender_name=draw(st.from_regex(r"\A[A-Za-z_-]{0,30}\Z")),
        comment=draw(multiline),
        test_ins=draw(st.booleans()),
    )


@st.composite
def prescriptions(draw: st.DrawFn) -> Prescription:
    lines = draw(
        st.lists(
            st.builds(
                MedicationLine,
                medication=words,
                dosage=words,
                duration=words,
                quantity=optional_words,
                code=optional_words,
                instructions=optional_words,
                substitutable=st.booleans(),
            ),
            min_size=1,
            max_size=4,
        )
    )
    prescriber = Issuer(
        "10003578209",
        draw(words),
        draw(st.sampled_from(["10", "40", "50", "21"])),
        draw(optional_words),
        draw(optional_words),
    )
    return Prescription(
        prescriber,
        draw(identities()),
        draw(days),
        tuple(lines),
        reference=draw(words),
        renewals=draw(st.integers(0, 12)),
        notes=draw(multiline),
    )
