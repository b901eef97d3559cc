"""Demo data for the patient's side: a médecin traitant, a thread the doctor opened and the
patient answered, a document (IHE XDM) in the patient's record, an appointment to answer and
a consent request waiting in the webmail, with their history."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TextIO

from messaging import Address, Draft, build_message
from messaging.access_history import label
from messaging.ins import Ins, QualifiedIdentity, Sex
from messaging.kinds.appointment import build_appointment, new_request, new_uid
from messaging.kinds.consent import Scope
from messaging.kinds.document import DocumentMessage, HealthDocument, build_document
from messaging.mime import new_message_id
from pli.wiring import Pli

__all__ = ["seed_patient"]

DEMO_IDENTITY = QualifiedIdentity(
    Ins.parse("185057800608491"), "DURAND", "Camille", date(1985, 5, 12), Sex.MALE
)


async def seed_patient(
    pli: Pli,
    doctor: Address,
    patient: Address,
    passphrases: dict[str, str],
    pdf: bytes,
    out: TextIO,
) -> None:
    """Run the patient's rules on demo data: only when both accounts were just created."""
    if str(doctor) not in passphrases or str(patient) not in passphrases:
        return
    doctor_keys = (await pli.accounts.unlock(doctor, passphrases[str(doctor)])).keys
    patient_keys = (await pli.accounts.unlock(patient, passphrases[str(patient)])).keys
    await pli.patients.declare_treating_doctor(patient, doctor)

    # A thread the doctor opens, and the patient's reply in it (a patient never opens one).
    question = Draft(
        sender=doctor,
        recipients=(patient,),
        subject="Suivi de votre tension",
        body="Bonjour,\n\nPouvez-vous m'envoyer vos mesures de la semaine ?\n\nDr Martin",
        sender_name="Dr Sophie MARTIN",
    )
    raw = build_message(question, message_id=new_message_id(doctor.domain), date=pli.clock.now())
    opened = await pli.delivery.send(doctor, doctor_keys, (patient,), raw)
    reply = Draft(
        sender=patient,
        recipients=(doctor,),
        subject="Re: Suivi de votre tension",
        body="Bonjour Docteur,\n\n13/8 le matin, 12/7 le soir.\n\nCamille Durand",
    )
    raw = build_message(reply, message_id=new_message_id(patient.domain), date=pli.clock.now())
    await pli.delivery.send(patient, patient_keys, (doctor,), raw, thread_id=opened.thread_id)

    # A document for the record, in the national format (XDM archive and readable PDF).
    document = DocumentMessage(
        sender=doctor,
        recipients=(patient,),
        patient=DEMO_IDENTITY,
        documents=(
            HealthDocument(
                title="Compte rendu de consultation",
                type_code="11488-4",
                pdf=pdf,
                date=pli.clock.now().date(),
            ),
        ),
        sender_name="Dr_Sophie_MARTIN_Cabinet-Martin",
        comment="Bonjour,\nvoici le compte rendu de votre consultation.",
    )
    raw = build_document(document, message_id=new_message_id(doctor.domain), date=pli.clock.now())
    await pli.delivery.send(doctor, doctor_keys, (patient,), raw)

    # An invitation for "Mon agenda" (answered in the browser) and a consent request to
    # answer there: the two things a patient can only do with their keys.
    now = pli.clock.now()
    start = (now + timedelta(days=7)).replace(hour=9, minute=30, second=0, microsecond=0)
    invitation = new_request(
        uid=new_uid(doctor.domain),
        organizer=doctor,
        organizer_name="Dr Sophie MARTIN",
        attendees=[patient],
        start=start,
        end=start + timedelta(minutes=30),
        summary="Consultation de suivi",
        location="Cabinet Martin",
        dtstamp=now,
    )
    raw = build_appointment(invitation, message_id=new_message_id(doctor.domain), date=now)
    await pli.delivery.send(doctor, doctor_keys, (patient,), raw)
    await pli.patients.request_consent(
        doctor,
        doctor_keys,
        patient,
        scope=Scope.record(),
        purpose="Suivi de votre tension artérielle",
        duration_days=90,
    )

    out.write(f"Patient {patient}: médecin traitant {doctor}; access history:\n")
    for entry in await pli.patients.history(patient):
        out.write(f"  {entry.seq}  {label(entry.action)}  ({entry.actor})\n")
