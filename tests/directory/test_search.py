"""Search as a user types: prefixes, any case and accent, ranked, paginated — on every
implementation, with the same answers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from messaging.directory import (
    COUNT_LIMIT,
    MAX_PAGE_SIZE,
    Directory,
    InvalidQuery,
    SearchHit,
    SearchPage,
    SearchQuery,
)
from messaging.types import Address, MailboxKind
from tests.directory.factories import extraction, line, org

PEOPLE = extraction(
    line(
        address="helene.lefevre@medecin.mssante.fr",
        national_id="810000000001",
        family="LEFÈVRE",
        given="Hélène",
        specialty="Pédiatrie (SM)",
        routing="69003 LYON",
        postcode="69003",
        organisation="CABINET MEDICAL DES BROTTEAUX",
        trade_name="",
        street="GARIBALDI",
    ),
    line(
        address="jean-pierre.martin-dupont@medecin.mssante.fr",
        national_id="810000000002",
        family="MARTIN-DUPONT",
        given="Jean-Pierre",
        routing="75014 PARIS",
        postcode="75014",
        organisation="CENTRE DE SANTÉ DE PARIS",
        trade_name="",
        street="DE LA SANTÉ",
    ),
    line(
        address="aicha.ndiaye@infirmier.mssante.fr",
        national_id="810000000003",
        family="N'DIAYE",
        given="Aïcha",
        profession="Infirmier",
        specialty="",
        routing="35000 RENNES",
        postcode="35000",
        organisation="CABINET INFIRMIER",
        street="DE PARIS",
    ),
    line(
        address="paul.martin@medecin.mssante.fr",
        national_id="810000000004",
        family="MARTIN",
        given="Paul",
        routing="35000 RENNES",
        postcode="35000",
    ),
    line(
        address="martine.roux@sage-femme.mssante.fr",
        national_id="810000000005",
        family="ROUX",
        given="Martine",
        profession="Sage-Femme",
        specialty="",
        routing="35000 RENNES",
        postcode="35000",
    ),
    org(
        address="secretariat.cardio@clinique-saint-martin.mssante.fr",
        organisation="CLINIQUE SAINT-MARTIN",
        trade_name="",
        service="Cardiologie",
        routing="35000 RENNES",
        postcode="35000",
    ),
)


def addresses(page: SearchPage) -> list[str]:
    return [str(hit.address) for hit in page.items]


async def search(directory: Directory, **fields: object) -> SearchPage:
    return await directory.search(SearchQuery(**fields))  # type: ignore[arg-type]


@pytest.fixture
async def people(directory: Directory) -> Directory:
    await directory.import_extraction(PEOPLE)
    return directory


async def test_a_name_is_found_whatever_its_case_and_accents(people: Directory):
    for text in ("lefevre", "LEFÈVRE", "Lefèvre", "lefÉvre", "helene", "Hélène lefev"):
        page = await search(people, text=text)
        assert addresses(page) == ["helene.lefevre@medecin.mssante.fr"], text


async def test_words_are_matched_as_prefixes_as_the_user_types(people: Directory):
    assert addresses(await search(people, text="lef")) == ["helene.lefevre@medecin.mssante.fr"]
    assert addresses(await search(people, text="pédiat")) == ["helene.lefevre@medecin.mssante.fr"]
    assert (await search(people, text="lefevrex")).items == ()


async def test_hyphens_and_apostrophes_can_be_typed_or_not(people: Directory):
    for text in ("martin-dup", "dupont", "jean pierre", "jean-pierre martin"):
        assert "jean-pierre.martin-dupont@medecin.mssante.fr" in addresses(
            await search(people, text=text)
        ), text
    for text in ("n'diaye", "ndiaye", "diaye", "NDIA"):
        assert addresses(await search(people, text=text)) == [
            "aicha.ndiaye@infirmier.mssante.fr"
        ], text


async def test_every_word_must_match(people: Directory):
    assert addresses(await search(people, text="martin paris")) == [
        "jean-pierre.martin-dupont@medecin.mssante.fr"
    ]
    assert (await search(people, text="lefevre paris")).items == ()


async def test_fields_restrict_their_words_to_one_field(people: Directory):
    # "paris" is a street of N'DIAYE and a city of MARTIN-DUPONT.
    assert len((await search(people, text="paris")).items) == 2
    assert addresses(await search(people, city="paris")) == [
        "jean-pierre.martin-dupont@medecin.mssante.fr"
    ]
    assert addresses(await search(people, street="paris")) == ["aicha.ndiaye@infirmier.mssante.fr"]
    assert addresses(await search(people, name="martin", city="ren")) == [
        "paul.martin@medecin.mssante.fr"
    ]
    assert addresses(await search(people, given_name="mart")) == [
        "martine.roux@sage-femme.mssante.fr"
    ]
    assert addresses(await search(people, profession="sage")) == [
        "martine.roux@sage-femme.mssante.fr"
    ]
    assert addresses(await search(people, specialty="pédiatrie")) == [
        "helene.lefevre@medecin.mssante.fr"
    ]
    assert addresses(await search(people, organisation="brotteaux")) == [
        "helene.lefevre@medecin.mssante.fr"
    ]
    assert addresses(await search(people, postcode="690")) == ["helene.lefevre@medecin.mssante.fr"]
    assert addresses(await search(people, street="garib", city="lyon")) == [
        "helene.lefevre@medecin.mssante.fr"
    ]


async def test_street_type_codes_are_found_by_their_word(people: Directory):
    assert len((await search(people, street="rue garibaldi")).items) == 1


async def test_a_family_name_ranks_before_a_given_name_or_an_organisation(people: Directory):
    page = await search(people, text="martin")
    assert [(str(hit.address), hit.tier) for hit in page.items] == [
        ("jean-pierre.martin-dupont@medecin.mssante.fr", 1),
        ("paul.martin@medecin.mssante.fr", 1),
        ("martine.roux@sage-femme.mssante.fr", 2),
        ("secretariat.cardio@clinique-saint-martin.mssante.fr", 2),
    ]
    page = await search(people, text="garibaldi")  # a street only
    assert [hit.tier for hit in page.items] == [3]


async def test_a_search_for_a_kind_shows_that_kind_only(people: Directory):
    page = await search(people, text="martin", kind=MailboxKind.ORG)
    assert addresses(page) == ["secretariat.cardio@clinique-saint-martin.mssante.fr"]
    assert all(hit.role.kind is MailboxKind.ORG for hit in page.items)


async def test_part_of_an_address_finds_its_mailbox(people: Directory):
    assert addresses(await search(people, mailbox="NDIAYE@")) == [
        "aicha.ndiaye@infirmier.mssante.fr"
    ]
    assert addresses(await search(people, mailbox="medecin", text="paul")) == [
        "paul.martin@medecin.mssante.fr"
    ]
    assert (await search(people, mailbox="100%_")).items == ()


async def test_pages_cover_every_match_once_in_order(people: Directory):
    seen: list[SearchHit] = []
    page = await search(people, text="rennes", limit=2)
    assert (page.total, page.total_exact) == (4, True)
    while True:
        seen += page.items
        if page.next_cursor is None:
            break
        page = await search(people, text="rennes", limit=2, cursor=page.next_cursor)
        assert page.total == 4
    assert len(seen) == 4 == len({hit.address for hit in seen})
    everything = await search(people, text="rennes")
    assert seen == list(everything.items)
    assert everything.next_cursor is None


async def test_a_page_past_the_end_is_empty_but_counts(people: Directory):
    page = await search(people, text="rennes", cursor="o10")
    assert (page.items, page.total, page.next_cursor) == ((), 4, None)


async def test_liste_rouge_mailboxes_never_show_then_show_again(people: Directory):
    paul = Address.parse("paul.martin@medecin.mssante.fr")
    entry = await people.get_mailbox(paul)
    assert entry is not None
    await people.update_mailbox(replace(entry, liste_rouge=True))
    assert str(paul) not in addresses(await search(people, text="martin"))
    assert (await search(people, mailbox="paul.martin")).items == ()
    await people.update_mailbox(replace(entry, liste_rouge=False))
    assert str(paul) in addresses(await search(people, text="martin"))


async def test_retired_roles_are_not_found(people: Directory):
    await people.import_extraction(PEOPLE[:-1])
    assert "secretariat" not in " ".join(addresses(await search(people, text="martin")))


async def test_a_changed_line_is_found_by_its_new_words_only(people: Directory):
    changed = [*PEOPLE[:4], PEOPLE[4].replace(b"MARTIN", b"MARTEL"), *PEOPLE[5:]]
    await people.import_extraction(changed)
    assert addresses(await search(people, name="martel")) == ["paul.martin@medecin.mssante.fr"]
    assert "paul.martin@medecin.mssante.fr" not in addresses(await search(people, name="martin"))


async def test_name_and_city_prefixes_alone_or_with_other_words(people: Directory):
    # PostgreSQL answers name + city from an index of its own (dir_role_pairs): the same
    # answers as any other search, other words and the kind checked beside it.
    paul, jean_pierre = (
        "paul.martin@medecin.mssante.fr",
        ("jean-pierre.martin-dupont@medecin.mssante.fr"),
    )
    assert addresses(await search(people, name="mar", city="ren")) == [paul]
    assert addresses(await search(people, name="dupo", city="paris")) == [jean_pierre]
    assert addresses(await search(people, name="ndi", city="ren")) == [
        "aicha.ndiaye@infirmier.mssante.fr"
    ]
    assert addresses(await search(people, name="n'diaye", city="rennes")) == [
        "aicha.ndiaye@infirmier.mssante.fr"
    ]
    assert addresses(await search(people, name="diaye", city="ren")) == [
        "aicha.ndiaye@infirmier.mssante.fr"
    ]
    assert addresses(await search(people, name="martin dup", city="par")) == [jean_pierre]
    assert addresses(await search(people, name="mar", city="ren", given_name="pau")) == [paul]
    assert (await search(people, name="mar", city="ren", given_name="mart")).items == ()
    assert addresses(await search(people, name="mar", city="ren", kind=MailboxKind.PER)) == [paul]
    assert (await search(people, name="mar", city="ren", kind=MailboxKind.ORG)).items == ()
    assert (await search(people, name="mar", city="lyo")).items == ()
    assert (await search(people, name="martina", city="ren")).items == ()
    both = await search(people, name="mar", city="ren par", limit=1)
    assert (both.total, addresses(both)) == (0, [])
    both = await search(people, name="mar", city="re")  # a short city word: the usual way
    assert addresses(both) == [paul]
    page = await search(people, name="mart", city="ren", cursor="o10")
    assert (page.items, page.total) == ((), 1)


async def test_name_and_city_follow_liste_rouge_changes_and_retirement(people: Directory):
    paul = Address.parse("paul.martin@medecin.mssante.fr")
    entry = await people.get_mailbox(paul)
    assert entry is not None
    await people.update_mailbox(replace(entry, liste_rouge=True))
    assert (await search(people, name="mart", city="ren")).items == ()
    await people.update_mailbox(replace(entry, liste_rouge=False))
    assert addresses(await search(people, name="mart", city="ren")) == [str(paul)]
    changed = [*PEOPLE[:4], PEOPLE[4].replace(b"MARTIN", b"MARTEL"), *PEOPLE[5:]]
    await people.import_extraction(changed)
    assert addresses(await search(people, name="marte", city="ren")) == [str(paul)]
    assert (await search(people, name="martin", city="ren")).items == ()
    await people.import_extraction([*PEOPLE[:4], *PEOPLE[5:]])
    assert (await search(people, name="mar", city="ren")).items == ()


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery(),
        SearchQuery(text="  -  '"),
        SearchQuery(text="m"),
        SearchQuery(text=" ".join(f"w{n}" for n in range(13))),
        SearchQuery(text="x" * 65),
        SearchQuery(text="martin", cursor="page-2"),
        SearchQuery(text="martin", cursor=f"o{COUNT_LIMIT}"),
    ],
)
async def test_queries_that_cannot_run_are_refused(people: Directory, query: SearchQuery):
    with pytest.raises(InvalidQuery):
        await people.search(query)


def test_a_page_is_at_most_100_hits():
    assert MAX_PAGE_SIZE == 100
    with pytest.raises(InvalidQuery):
        SearchQuery(text="martin", limit=101)
    with pytest.raises(InvalidQuery):
        SearchQuery(text="martin", limit=0)


async def test_a_one_letter_word_beside_longer_ones_is_ignored(people: Directory):
    assert addresses(await search(people, text="martin p")) == addresses(
        await search(people, text="martin")
    )


def test_counts_stop_at_the_limit_and_say_so():
    page = SearchPage.cut((), COUNT_LIMIT + 500, 0)
    assert (page.total, page.total_exact) == (COUNT_LIMIT, False)
    page = SearchPage.cut((), 12, 20)
    assert (page.total, page.total_exact, page.next_cursor) == (12, True, None)
