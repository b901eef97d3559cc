"""Who a peer operator is: its client certificate, checked against the trust anchor and CRL.

RFC 3207 (STARTTLS), RFC 5280 (certificate and CRL validation, done by OpenSSL during the
handshake), RFC 8446 / RFC 5246 (TLS 1.3 / 1.2; nothing older is offered).

The MX asks every peer for a certificate (``CERT_OPTIONAL``): a certificate that does not
chain to the anchor, is expired or is revoked fails the handshake itself (OpenSSL's alert says
which), so no byte of SMTP is exchanged over such a session; a peer that sends none completes
TLS and is refused at ``MAIL`` with ``530 5.7.0`` (DOMAIN.md). Python's ``ssl`` cannot ask
for a certificate without checking it, which is why the bad-certificate refusals are TLS
alerts rather than SMTP replies.

The CRL is *kept*: :class:`PeerTrust` copies each CRL that parses and is signed by the anchor
to ``kept_crl`` and builds its contexts from that copy, so a failed or corrupt CRL download
leaves the last valid one in force (DOMAIN.md: "the last valid CRL is kept").
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

__all__ = ["PeerIdentity", "PeerTrust", "peer_identity"]

log = logging.getLogger("gateway_smtp.peers")


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """A peer's verified certificate: its name and a fingerprint for the record."""

    name: str
    """First DNS name of the certificate (else its common name)."""
    subject: str
    fingerprint: str
    """SHA-256 of the DER certificate, hex."""

    @property
    def tls(self) -> str:
        """What the sealed envelope's ``gateway`` record keeps of the certificate."""
        return f"{self.subject}; sha256={self.fingerprint}"


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> PeerIdentity | None:
    """The verified client certificate of a TLS session, or None when the peer sent none."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    common = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        dns = []
    name = (dns or common or [""])[0]
    return PeerIdentity(
        name=name.lower(),
        subject=cert.subject.rfc4514_string(),
        fingerprint=hashlib.sha256(der).hexdigest(),
    )


class PeerTrust:
    """TLS server contexts for the MX (peers must chain to the anchor) and for submission."""

    def __init__(
        self,
        *,
        cert: Path,
        key: Path,
        anchor: Path,
        crl: Path | None = None,
        kept_crl: Path | None = None,
    ) -> None:
        self._cert = cert
        self._key = key
        self._anchor = anchor
        self._crl = crl
        self._kept_crl = kept_crl or (crl.with_name(crl.name + ".kept") if crl else None)
        self.refresh_crl()
        self._mx = self._build(peer_certificates=True)
        self._submission = self._build(peer_certificates=False)

    @property
    def mx_context(self) -> ssl.SSLContext:
        return self._mx

    @property
    def submission_context(self) -> ssl.SSLContext:
        return self._submission

    def refresh_crl(self) -> bool:
        """Adopt the configured CRL if it is valid; else keep the last valid copy."""
        if self._crl is None or self._kept_crl is None:
            return True
        try:
            unchanged = self._kept_crl.read_bytes() == self._crl.read_bytes()
        except OSError:
            unchanged = False  # a missing or unreadable file is reported below
        if unchanged:
            return True  # nothing to rebuild
        try:
            data = self._crl.read_bytes()
            crl = _load_crl(data)
            anchor = x509.load_pem_x509_certificate(self._anchor.read_bytes())
            if crl.issuer != anchor.subject or not crl.is_signature_valid(_public_key(anchor)):
                raise ValueError("the CRL is not signed by the trust anchor")
        except (OSError, ValueError) as error:
            log.warning(
                "CRL refresh failed; keeping the last valid CRL",
                extra={"path": str(self._crl), "error": str(error)},
            )
            return False
        pem = crl.public_bytes(Encoding.PEM)
        temporary = self._kept_crl.with_name(self._kept_crl.name + ".new")
        temporary.write_bytes(pem)
        os.replace(temporary, self._kept_crl)
        if hasattr(self, "_mx"):
            self._mx = self._build(peer_certificates=True)
        return True

    def _build(self, *, peer_certificates: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # No TLS 1.3 session tickets, as on IMAP: their key lives as long as the process
        # (forward secrecy), and an SMTP session is one connection that resumption would
        # not shorten.
        context.num_tickets = 0
        context.load_cert_chain(self._cert, self._key)
        if peer_certificates:
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(cafile=str(self._anchor))
            if self._kept_crl is not None and self._kept_crl.exists():
                context.load_verify_locations(cafile=str(self._kept_crl))
                context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        return context


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _public_key(cert: x509.Certificate) -> Any:  # noqa: ANN401 - any CA key type
    return cert.public_key()
