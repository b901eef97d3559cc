"""The routing header: canonical JSON, strict parsing."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import EnvelopeError, GatewayInfo, RoutingHeader, SigningPublicKey
from crypto.header import MAX_SIZE
from tests.crypto.support import ALICE, OPERATOR, make_header

# Valid header text: any Unicode scalar value except controls (Cc) and surrogates (Cs).
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=40)


@st.composite
def dates(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes())
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


@st.composite
def headers(draw: st.DrawFn) -> RoutingHeader:
    gateway = draw(st.none() | st.builds(GatewayInfo, peer=TEXT, tls=TEXT))
    return RoutingHeader(
        envelope_id=draw(TEXT),
        thread_id=draw(TEXT),
        kind=draw(TEXT),
        sender=draw(TEXT),
        recipients=tuple(draw(st.lists(TEXT, max_size=5))),
        size=draw(st.integers(0, MAX_SIZE)),
        date=draw(dates()),
        provenance="e2e" if gateway is None else "gateway",
        signer=SigningPublicKey(draw(st.binary(min_size=32, max_size=32))),
        gateway=gateway,
    )


@given(headers())
def test_headers_round_trip_through_their_canonical_bytes(header: RoutingHeader) -> None:
    data = header.to_bytes()
    assert RoutingHeader.from_bytes(data) == header
    assert RoutingHeader.from_bytes(data).to_bytes() == data


@given(headers())
def test_the_canonical_encoding_is_sorted_compact_utf8_json(header: RoutingHeader) -> None:
    data = header.to_bytes()
    document = json.loads(data)
    assert list(document) == sorted(document)
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert data == expected.encode("utf-8")
    assert ("gw" in document) == (header.provenance == "gateway")


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_with_envelope_error_only(data: bytes) -> None:
    try:
        RoutingHeader.from_bytes(data)
    except EnvelopeError:
        pass


def test_the_documented_example() -> None:
    header = make_header(
        size=1234, recipients=("élodie@patient.pli.test",), signer=ALICE, thread_id="t"
    )
    text = header.to_bytes().decode()
    assert text == (
        '{"date":"2026-11-22T10:00:00Z","from":"sophie.martin@medecin.pli.test",'
        '"id":"env-0001","prov":"e2e","sigkey":"' + ALICE.signing_public.b64() + '",'
        '"size":1234,"thread":"t","to":["élodie@patient.pli.test"],"type":"note","v":1}'
    )


def test_gateway_headers_record_the_peer() -> None:
    gateway = GatewayInfo(peer="mx.ch-x.fr", tls="sha256:ab")
    header = make_header(size=1, signer=OPERATOR, gateway=gateway)
    document = json.loads(header.to_bytes())
    assert document["prov"] == "gateway"
    assert document["gw"] == {"peer": "mx.ch-x.fr", "tls": "sha256:ab"}


def test_a_list_of_recipients_becomes_a_tuple() -> None:
    header = make_header(size=0, recipients=["a@x", "b@y"])
    assert header.recipients == ("a@x", "b@y")
    assert hash(header) == hash(make_header(size=0, recipients=("a@x", "b@y")))


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"version": True},
        {"size": -1},
        {"size": MAX_SIZE + 1},
        {"size": True},
        {"size": 1.0},
        {"date": "2026-11-22T10:00:00+00:00"},
        {"date": "2026-11-22 10:00:00Z"},
        {"date": "2026-11-22T10:00:60Z"},
        {"date": "２026-11-22T10:00:00Z"},  # a full-width digit is not [0-9]
        {"date": "2026-11-22T10:00:00Z\n"},
        {"provenance": "smtp"},
        {"provenance": "gateway"},
        {"gateway": GatewayInfo(peer="", tls="")},
        {"sender": "a\r\nBcc: x@y"},
        {"sender": "nul\x00"},
        {"sender": "c1 control \x85"},
        {"kind": "lone \ud800 surrogate"},
        {"recipients": ("ok", "bad\n")},
        {"recipients": "a@x"},
        {"recipients": (1,)},
        {"envelope_id": None},
        {"signer": ALICE.signing_public.raw},
    ],
)
def test_invalid_headers_cannot_be_built(changes: dict[str, Any]) -> None:
    with pytest.raises(EnvelopeError):
        replace(make_header(size=5), **changes)


def test_invalid_gateway_info_cannot_be_built() -> None:
    with pytest.raises(EnvelopeError):
        GatewayInfo(peer="mx\n", tls="")
    with pytest.raises(EnvelopeError):
        GatewayInfo(peer="mx", tls=None)  # type: ignore[arg-type]


def test_non_canonical_spellings_of_a_valid_header_are_refused() -> None:
    canonical = make_header(size=5).to_bytes()
    document = json.loads(canonical)
    for spelling in (
        json.dumps(document).encode(),  # default separators
        json.dumps(document, sort_keys=True, indent=1).encode(),
        json.dumps(dict(reversed(document.items())), separators=(",", ":")).encode(),
        canonical + b"\n",
        b" " + canonical,
        canonical.replace(b'"size":5', b'"size":5e0'),
        canonical.replace(b'"size":5', b'"size":05'),
        canonical.replace(b'"v":1', b'"v":1.0'),
        canonical.replace(b"sophie", b"\\u0073ophie"),
        canonical[:-1] + b',"v":1}',
    ):
        with pytest.raises(EnvelopeError):
            RoutingHeader.from_bytes(spelling)


def test_hostile_nesting_is_refused_without_recursion_error() -> None:
    deep = b"[" * 60000 + b"]" * 60000
    with pytest.raises(EnvelopeError):
        RoutingHeader.from_bytes(deep)
    with pytest.raises(EnvelopeError):
        RoutingHeader.from_bytes(b'{"v":1,"to":' + b"[" * 60000 + b"]" * 60000 + b"}")


def test_huge_integers_are_refused() -> None:
    canonical = make_header(size=5).to_bytes()
    with pytest.raises(EnvelopeError):
        RoutingHeader.from_bytes(canonical.replace(b'"size":5', b'"size":' + b"9" * 5000))


def test_non_bytes_are_refused() -> None:
    with pytest.raises(EnvelopeError):
        RoutingHeader.from_bytes(make_header(size=5).to_bytes().decode())  # type: ignore[arg-type]


def test_escaped_non_ascii_is_refused() -> None:
    header = make_header(size=5, sender="élodie@pli.test")
    escaped = json.dumps(json.loads(header.to_bytes()), sort_keys=True, separators=(",", ":"))
    assert "\\u00e9" in escaped
    with pytest.raises(EnvelopeError):
        RoutingHeader.from_bytes(escaped.encode())
