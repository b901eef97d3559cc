"""Hardened XML parsing for the documents Pli reads (HL7 CDA R2, IHE XDM ``METADATA.XML``).

XML 1.0 (W3C, fifth edition) through expat, wrapped by ``defusedxml``. Health documents come
from outside the trust boundary, so the parser accepts only plain element trees:

- no document type declaration at all (CDA R2 and ebRIM 3.0 are validated by schema, never by
  DTD), so no internal entity expansion (billion laughs, quadratic blow-up) and no external
  resource is ever fetched (XXE, external DTD): nothing here touches the network or the disk;
- an explicit byte size limit checked before parsing, and element depth and element count
  limits enforced while parsing, so a deeply nested or huge tree is refused before it is built.

Every refusal is an :class:`~messaging.errors.InvalidMessage` whose ``code`` names the check:

=======================  ==================================================================
``xml-too-large``        more bytes than ``XmlLimits.max_bytes``
``xml-malformed``        not well-formed XML (expat's error is in the reason)
``xml-dtd``              a document type declaration, even a harmless one
``xml-entity``           an entity declaration (the billion-laughs family)
``xml-external-entity``  an external entity, external DTD or any reference to a resource
``xml-too-deep``         elements nested deeper than ``XmlLimits.max_depth``
``xml-too-many-elements``  more elements than ``XmlLimits.max_elements``
=======================  ==================================================================

Implementation notes: the entity checks run while expat reads the internal DTD subset, so a
bomb is reported as ``xml-entity`` (the precise cause) rather than as ``xml-dtd``; the DTD itself
is refused when its declaration ends. Handlers raise from inside expat, which stops at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import (  # noqa: S405 - types and the builder only; parsing is defused
    Element,
    ParseError,
    TreeBuilder,
)

from defusedxml.ElementTree import DefusedXMLParser

from messaging.errors import InvalidMessage

__all__ = ["XmlLimits", "parse_xml", "local_name"]


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """Bounds for one XML document; the defaults fit real CDA documents with room to spare."""

    max_bytes: int = 20 * 1024 * 1024
    """A CDA with an embedded PDF (base64) is a few megabytes; a message is at most 25 MB."""
    max_depth: int = 128
    """Real CDA bodies nest sections and entries a few dozen levels deep at most."""
    max_elements: int = 500_000


class _BoundedBuilder:
    """A tree builder that counts depth and elements as expat reports them."""

    def __init__(self, limits: XmlLimits) -> None:
        self._builder = TreeBuilder()
        self._limits = limits
        self._depth = 0
        self._elements = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._depth += 1
        self._elements += 1
        if self._depth > self._limits.max_depth:
            raise InvalidMessage(
                f"XML elements are nested deeper than {self._limits.max_depth} levels",
                "xml-too-deep",
            )
        if self._elements > self._limits.max_elements:
            raise InvalidMessage(
                f"XML document has more than {self._limits.max_elements} elements",
                "xml-too-many-elements",
            )
        return self._builder.start(tag, attrs)

    def end(self, tag: str) -> Element:
        self._depth -= 1
        return self._builder.end(tag)

    def data(self, data: str) -> None:
        self._builder.data(data)

    def close(self) -> Element:
        return self._builder.close()


class _HardenedParser(DefusedXMLParser):  # type: ignore[misc]  # defusedxml ships no types
    """defusedxml's parser with precise refusal codes and no DTD of any kind."""

    def __init__(self, limits: XmlLimits) -> None:
        # forbid_dtd stays False here only so that entity declarations inside the internal
        # subset are reported with their own code first; the DTD is refused at its end.
        super().__init__(
            target=_BoundedBuilder(limits),
            forbid_dtd=False,
            forbid_entities=True,
            forbid_external=True,
        )
        self.parser.StartDoctypeDeclHandler = self._doctype_start
        self.parser.EndDoctypeDeclHandler = self._doctype_end

    def _doctype_start(
        self, name: str, sysid: str | None, pubid: str | None, _has_internal_subset: bool
    ) -> None:
        if sysid or pubid:
            raise InvalidMessage(
                f"XML document type {name!r} refers to an external DTD", "xml-external-entity"
            )

    def _doctype_end(self) -> None:
        raise InvalidMessage("XML document type declarations are not accepted", "xml-dtd")

    def defused_entity_decl(
        self,
        name: str,
        _is_parameter_entity: bool,
        _value: str | None,
        _base: str | None,
        sysid: str | None,
        pubid: str | None,
        notation_name: str | None,
    ) -> None:
        if sysid or pubid or notation_name:
            raise InvalidMessage(
                f"XML entity {name!r} refers to an external resource", "xml-external-entity"
            )
        raise InvalidMessage(f"XML entity declarations are not accepted ({name!r})", "xml-entity")

    def defused_unparsed_entity_decl(
        self,
        name: str,
        _base: str | None,
        _sysid: str | None,
        _pubid: str | None,
        _notation_name: str | None,
    ) -> None:  # pragma: no cover - expat reports these through EntityDeclHandler
        raise InvalidMessage(
            f"XML entity {name!r} refers to an external resource", "xml-external-entity"
        )

    def defused_external_entity_ref_handler(
        self, _context: str, _base: str | None, sysid: str | None, _pubid: str | None
    ) -> None:  # pragma: no cover - no entity can be declared, so none can be referenced
        raise InvalidMessage(f"XML refers to an external resource {sysid!r}", "xml-external-entity")


def parse_xml(data: bytes, limits: XmlLimits | None = None) -> Element:
    """The root element of ``data``, parsed under ``limits``; :class:`InvalidMessage` otherwise."""
    limits = limits or XmlLimits()
    if len(data) > limits.max_bytes:
        raise InvalidMessage(
            f"XML document of {len(data)} bytes exceeds the {limits.max_bytes}-byte limit",
            "xml-too-large",
        )
    parser = _HardenedParser(limits)
    try:
        parser.feed(data)
        root = parser.close()
    except ParseError as exc:
        raise InvalidMessage(f"XML is not well-formed: {exc}", "xml-malformed") from None
    if not isinstance(root, Element):  # pragma: no cover - TreeBuilder always returns one
        raise InvalidMessage("XML has no root element", "xml-malformed")
    return root


def local_name(tag: str) -> str:
    """``ClinicalDocument`` for ``{urn:hl7-org:v3}ClinicalDocument``."""
    return tag.rpartition("}")[2]
