"""Export: the extraction format again, byte for byte, liste rouge left out."""

from __future__ import annotations

from dataclasses import replace

from bench.gen_extraction import generate
from directory.extraction import HEADER, read_extraction
from messaging.directory import Directory
from messaging.types import Address
from tests.directory.conftest import export
from tests.directory.factories import extraction, line, org

GENERATED = list(generate(300, seed=7, duplicates=0.05))


async def test_export_of_an_import_is_the_generated_file_byte_for_byte(directory: Directory):
    await directory.import_extraction(GENERATED)
    assert await export(directory) == b"".join(GENERATED)


async def test_an_empty_directory_exports_the_header_alone(directory: Directory):
    assert await export(directory) == HEADER


async def test_liste_rouge_mailboxes_are_left_out_of_the_export(directory: Directory):
    await directory.import_extraction(GENERATED)
    hidden = [row.address for row in read_extraction(GENERATED)][5:8]
    for address in hidden:
        entry = await directory.get_mailbox(address)
        assert entry is not None
        await directory.update_mailbox(replace(entry, liste_rouge=True))
    expected = [
        raw
        for raw, row in zip(GENERATED[1:], read_extraction(GENERATED), strict=True)
        if row.address not in hidden
    ]
    assert await export(directory) == HEADER + b"".join(expected)
    # Lifting the flag brings the lines back where they were.
    for address in hidden:
        entry = await directory.get_mailbox(address)
        assert entry is not None
        await directory.update_mailbox(replace(entry, liste_rouge=False))
    assert await export(directory) == b"".join(GENERATED)


async def test_export_follows_the_order_of_the_file_last_imported(directory: Directory):
    first = extraction(line(), org(address="accueil@ch.fr"), line(address="b@medecin.fr"))
    await directory.import_extraction(first)
    reordered = extraction(first[3], line(address="new@medecin.fr"), first[1])
    await directory.import_extraction(reordered)
    assert await export(directory) == b"".join(reordered)


async def test_the_address_is_exported_as_written_though_compared_in_lower_case(
    directory: Directory,
):
    lines = extraction(line(address="Sophie.Martin@MEDECIN.mssante.fr"))
    await directory.import_extraction(lines)
    assert await directory.get_mailbox(Address("sophie.martin", "medecin.mssante.fr"))
    assert await export(directory) == b"".join(lines)
