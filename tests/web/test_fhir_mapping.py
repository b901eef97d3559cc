"""Pure mapping of directory values to FHIR: resource ids, contact points, resources."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from messaging import Address, MailboxKind
from messaging.directory import Code, MailboxEntry, Organisation, PostalAddress, Practitioner
from web import fhir


@given(st.text(min_size=1, max_size=80))
def test_resource_ids_read_back_to_the_text_they_were_made_from(text):
    resource_id = fhir.encode_id(text)
    assert all(c.isascii() and (c.isalnum() or c in ".-") for c in resource_id)
    assume(len(resource_id) <= 400)  # longer ids are not read at all
    assert fhir.decode_id(resource_id) == text


@given(st.text(max_size=80))
def test_decoding_never_raises_and_ids_are_canonical(resource_id):
    text = fhir.decode_id(resource_id)
    if text is not None:
        assert fhir.encode_id(text) == resource_id


@given(st.text(min_size=1, max_size=60), st.integers(min_value=0, max_value=999))
def test_role_ids_read_back_to_address_and_position(address, position):
    assume(len(fhir.role_id(address, position)) <= 400)
    assert fhir.parse_role_id(fhir.role_id(address, position)) == (address, position)


def test_ids_of_usual_values_stay_readable():
    assert fhir.encode_id("810001234567") == "810001234567"
    assert fhir.encode_id("2A0000001") == "2A0000001"
    assert fhir.role_id("jean-marie.dupont@ch-x.fr", 0) == "jean-2Dmarie.dupont-40ch-2Dx.fr"
    assert fhir.role_id("a@b.fr", 2) == "a-40b.fr--2"
    for bad in ("a-40b.fr--0", "a-40b.fr--01", "a-40b.fr--x", "a-4", "a-zz", "-61", ""):
        assert fhir.parse_role_id(bad) is None, bad


def test_an_empty_mailbox_has_only_its_type_and_liste_rouge():
    entry = MailboxEntry(Address.parse("a@b.test"), MailboxKind.CAB)
    contact = fhir.mailbox_contact_point(entry, show_responsible=True)
    extensions: Any = contact["extension"]
    assert extensions[1]["extension"] == [
        {
            "url": "type",
            "valueCodeableConcept": {"coding": [{"system": fhir.TYPE_BAL_SYSTEM, "code": "CAB"}]},
        },
        {"url": "listeRouge", "valueBoolean": False},
    ]
    assert "rank" not in contact


def test_a_practitioner_without_names_or_codes_has_only_its_identifier():
    resource = fhir.practitioner_resource(Practitioner("012345678901", "0", "12345678901"))
    assert resource == {
        "resourceType": "Practitioner",
        "id": "012345678901",
        "identifier": [
            {
                "use": "official",
                "type": {"coding": [{"system": fhir.IDENTIFIER_TYPE_SYSTEM, "code": "IDNPS"}]},
                "system": fhir.IDNPS_SYSTEM,
                "value": "012345678901",
            }
        ],
        "active": True,
    }


def test_a_specialty_outside_the_ordinal_list_is_text_only():
    practitioner = Practitioner(
        "810000000001",
        specialty=Code("CAPA01", "Capacité d'addictologie"),
        profession=Code("", "Médecin"),
    )
    resource = fhir.practitioner_resource(practitioner)
    assert resource["qualification"] == [{"code": {"text": "Capacité d'addictologie"}}]


def test_an_organisation_lists_its_address_lines_in_order():
    organisation = Organisation(
        "1350000002",
        "1",
        "MAISON DE SANTE",
        "MSP DU PORT",
        PostalAddress(
            complement_location="BATIMENT B",
            complement_distribution="BP 12",
            street_number="3",
            street_number_suffix="B",
            street_type="AV",
            street_name="DU PORT",
            locality="LE HAVRE",
            routing_line="35033 RENNES CEDEX 9",
            postcode="35033",
        ),
    )
    resource = fhir.organization_resource(organisation)
    assert resource["alias"] == ["MSP DU PORT"]
    assert resource["address"] == [
        {
            "line": ["BATIMENT B", "BP 12", "3 B AV DU PORT", "LE HAVRE"],
            "city": "RENNES CEDEX 9",
            "postalCode": "35033",
        }
    ]
