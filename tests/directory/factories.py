"""Lines of an extraction, written field by field for the scenario at hand."""

from __future__ import annotations

from collections.abc import Iterable

from directory.extraction import COLUMNS, HEADER

# A médecin's line, every column filled as the national file fills it.
_DEFAULTS = {
    "Type de BAL": "PER",
    "Adresse BAL": "sophie.martin@medecin.mssante.fr",
    "Type Identifiant PP": "8",
    "Identifiant PP": "10001234567",
    "Identification nationale PP": "810001234567",
    "Type identifiant structure": "1",
    "Identification Structure": "1750712184",
    "Service de rattachement": "",
    "Civilité d'exercice": "DR",
    "Nom d'exercice": "MARTIN",
    "Prénom d'exercice": "Sophie",
    "Catégorie profession": "C",
    "Libellé de catégorie profession": "Civil",
    "Code Profession": "10",
    "Libellé Profession": "Médecin",
    "Code savoir-faire": "SM04",
    "Libellé savoir-faire": "Cardiologie et maladies vasculaires (SM)",
    "Dématérialisation": "True",
    "Raison Sociale structure BAL": "CENTRE HOSPITALIER DE RENNES",
    "Enseigne commerciale structure BAL": "CH Rennes",
    "L2COMPLEMENTLOCALISATION structure BAL": "",
    "L3COMPLEMENTDISTRIBUTION structure BAL": "",
    "L4NUMEROVOIE structure BAL": "2",
    "L4COMPLEMENTNUMEROVOIE structure BAL": "",
    "NL4TYPEVOIE structure BAL": "R",
    "L4LIBELLEVOIE structure BAL": "HENRI LE GUILLOUX",
    "L5LIEUDITMENTION structure BAL": "",
    "L6LIGNEACHEMINEMENT structure BAL": "35033 RENNES CEDEX 9",
    "Code postal structure BAL": "35033",
    "Département structure BAL": "35",
    "Pays structure BAL": "France",
}
_ORGANISATION = {
    "Type de BAL": "ORG",
    "Type Identifiant PP": "",
    "Identifiant PP": "",
    "Identification nationale PP": "",
    "Civilité d'exercice": "",
    "Nom d'exercice": "",
    "Prénom d'exercice": "",
    "Catégorie profession": "",
    "Libellé de catégorie profession": "",
    "Code Profession": "",
    "Libellé Profession": "",
    "Code savoir-faire": "",
    "Libellé savoir-faire": "",
}
# Keyword names for the columns a test changes most.
_SHORT = {
    "kind": "Type de BAL",
    "address": "Adresse BAL",
    "national_id": "Identification nationale PP",
    "structure": "Identification Structure",
    "service": "Service de rattachement",
    "family": "Nom d'exercice",
    "given": "Prénom d'exercice",
    "profession": "Libellé Profession",
    "specialty": "Libellé savoir-faire",
    "organisation": "Raison Sociale structure BAL",
    "trade_name": "Enseigne commerciale structure BAL",
    "street": "L4LIBELLEVOIE structure BAL",
    "routing": "L6LIGNEACHEMINEMENT structure BAL",
    "postcode": "Code postal structure BAL",
    "dematerialised": "Dématérialisation",
}


def values(**fields: str) -> list[str]:
    """The 31 values of a PER line (``kind="ORG"`` empties the practitioner's columns)."""
    row = dict(_DEFAULTS)
    if fields.get("kind") == "ORG":
        row.update(_ORGANISATION)
    for key, value in fields.items():
        row[_SHORT.get(key, key)] = value
    return [row[name] for name in COLUMNS]


def line(**fields: str) -> bytes:
    return "|".join(values(**fields)).encode() + b"\n"


def org(**fields: str) -> bytes:
    return line(kind="ORG", **fields)


def extraction(*lines: bytes) -> list[bytes]:
    """A whole file: the header, then ``lines``."""
    return [HEADER, *lines]


def file_bytes(lines: Iterable[bytes]) -> bytes:
    return b"".join(lines)
