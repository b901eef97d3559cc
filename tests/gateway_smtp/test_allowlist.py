"""The trust-space allow-list (XML of DOMAIN.md) and the CRL: parsed, refreshed, last good
copy kept."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from gateway_smtp.allowlist import (
    NAMESPACE,
    AllowList,
    AllowListError,
    AllowListSource,
    parse_allowlist,
)
from gateway_smtp.peers import PeerTrust
from tests.gateway_smtp.conftest import allowlist_xml
from tests.support.test_ca import make_ca


def test_every_domaine_nom_is_read_in_its_ascii_form() -> None:
    data = (
        f'<?xml version="1.0"?><ListeBlanche xmlns="{NAMESPACE}">'
        "<Operateur><Domaine><Nom>Hopital-A.fr</Nom></Domaine>"
        "<Domaine><Nom> hôpital-b.fr </Nom></Domaine></Operateur>"
        "<Domaine><Autre>ignored.fr</Autre></Domaine>"
        "</ListeBlanche>"
    ).encode()
    allowed = parse_allowlist(data)
    assert allowed.domains == frozenset({"hopital-a.fr", "xn--hpital-b-43a.fr"})
    assert allowed.allows("medecin.hopital-a.fr")  # subdomains of a listed operator
    assert allowed.allows("hôpital-b.fr") and allowed.allows("XN--HPITAL-B-43A.FR")
    assert not allowed.allows("hopital-a.fr.evil.test")
    assert not allowed.allows("ignored.fr")
    assert not allowed.allows("not a domain")


@pytest.mark.parametrize(
    "data",
    [
        b"<not xml",
        f'<ListeBlanche xmlns="{NAMESPACE}"></ListeBlanche>'.encode(),
        b"<ListeBlanche><Domaine><Nom>wrong-namespace.fr</Nom></Domaine></ListeBlanche>",
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            b'<ListeBlanche xmlns="' + NAMESPACE.encode() + b'"><Domaine><Nom>&a;</Nom>'
            b"</Domaine></ListeBlanche>"
        ),
    ],
    ids=["malformed", "empty", "other-namespace", "entity"],
)
def test_unusable_documents_are_refused(data: bytes) -> None:
    with pytest.raises(AllowListError):
        parse_allowlist(data)


def test_a_failed_refresh_keeps_the_last_good_copy(tmp_path: Path) -> None:
    path = tmp_path / "liste.xml"
    path.write_bytes(allowlist_xml("peer.test"))
    source = AllowListSource(path, always=["pli.test"])
    assert source.refresh()
    assert source.allows("mx.peer.test") and source.allows("pli.test")
    for broken in (b"<truncated", allowlist_xml()[:-5]):
        path.write_bytes(broken)
        assert not source.refresh()
        assert source.allows("mx.peer.test")
        assert source.last_error
    path.unlink()
    assert not source.refresh()
    assert source.allows("mx.peer.test")
    path.write_bytes(allowlist_xml("other.test"))
    assert source.refresh()
    assert source.allows("other.test") and not source.allows("peer.test")
    assert source.last_error is None


async def test_the_list_is_refreshed_on_a_schedule(tmp_path: Path) -> None:
    path = tmp_path / "liste.xml"
    path.write_bytes(allowlist_xml("peer.test"))
    source = AllowListSource(path, refresh_seconds=0.01)
    source.start()
    try:
        path.write_bytes(allowlist_xml("later.test"))
        for _ in range(500):  # bounded: the refresh runs every 10 ms
            if source.allows("later.test"):
                break
            await asyncio.sleep(0.01)
        assert source.allows("later.test")
    finally:
        await source.stop()


def test_allow_list_of_normalises_names() -> None:
    assert AllowList.of(["Exemple.FR."]).domains == frozenset({"exemple.fr"})


def test_an_invalid_crl_keeps_the_last_valid_one(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    other = make_ca(tmp_path / "other", name="Other")
    server = ca.issue("mx.pli.test", file_stem="server")
    revoked = ca.issue("mx.revoked.test", server=False, file_stem="revoked")
    ca.revoke(revoked)
    kept = tmp_path / "kept.crl.pem"
    trust = PeerTrust(
        cert=server.chain, key=server.key, anchor=ca.cert_path, crl=ca.crl_path, kept_crl=kept
    )
    first = kept.read_bytes()
    assert trust.mx_context.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    # A CRL signed by someone else, then garbage: refused, the kept copy stays.
    ca.crl_path.write_bytes(other.crl_path.read_bytes())
    assert not trust.refresh_crl()
    ca.crl_path.write_bytes(b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
    assert not trust.refresh_crl()
    assert kept.read_bytes() == first
    # A new valid CRL is adopted.
    ca.revoke(ca.issue("mx.second.test", server=False, file_stem="second"))
    assert trust.refresh_crl()
    assert kept.read_bytes() != first
