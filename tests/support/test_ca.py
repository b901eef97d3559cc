"""A throwaway X.509 certificate authority for the tests: servers, peers and clients.

Every TLS test makes its own CA (never a committed key): :func:`make_ca` returns one, and
:meth:`TestCA.issue` writes a certificate and key signed by it, for a server name (with
``serverAuth``) or a peer/client identity (with ``clientAuth``), optionally already expired
or later revoked in the CA's CRL. Files are PEM, ready for ``ssl`` contexts, Postfix or
mbsync.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCA", "Issued", "make_ca"]


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key on disk."""

    cert: Path
    key: Path
    serial: int
    chain: Path
    """The certificate followed by the CA's: what a server or client presents."""


@dataclass
class TestCA:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    directory: Path
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    revoked: list[int] = field(default_factory=list)

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl_path(self) -> Path:
        return self.directory / "ca.crl.pem"

    def issue(
        self,
        common_name: str,
        *,
        dns_names: tuple[str, ...] = (),
        server: bool = True,
        client: bool = True,
        expired: bool = False,
        file_stem: str | None = None,
    ) -> Issued:
        """A leaf certificate for ``common_name`` (also a DNS SAN, with ``dns_names``)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        if expired:
            not_before, not_after = now - timedelta(days=30), now - timedelta(days=1)
        else:
            not_before, not_after = now - timedelta(minutes=5), now + timedelta(days=2)
        names: list[x509.GeneralName] = []
        for dns in (common_name, *dns_names):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(dns)))
            except ValueError:
                names.append(x509.DNSName(dns))
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        stem = file_stem or common_name.replace("*", "_")
        cert_path = self.directory / f"{stem}.pem"
        key_path = self.directory / f"{stem}.key"
        chain_path = self.directory / f"{stem}.chain.pem"
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        cert_path.write_bytes(cert_pem)
        chain_path.write_bytes(cert_pem + self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return Issued(cert=cert_path, key=key_path, serial=serial, chain=chain_path)

    def revoke(self, issued: Issued) -> None:
        """Add ``issued`` to the CA's CRL and rewrite ``crl_path``."""
        self.revoked.append(issued.serial)
        self.write_crl()

    def write_crl(self) -> Path:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + timedelta(days=1))
        )
        for serial in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - timedelta(minutes=1))
                .build()
            )
        crl = builder.sign(self.key, hashes.SHA256())
        self.crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        return self.crl_path

    def server_context(self, issued: Issued) -> ssl.SSLContext:
        """A server context presenting ``issued`` (TLS 1.2 minimum)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(issued.chain, issued.key)
        return context

    def client_context(self, issued: Issued | None = None) -> ssl.SSLContext:
        """A client context trusting this CA, presenting ``issued`` when given."""
        context = ssl.create_default_context(cafile=str(self.cert_path))
        if issued is not None:
            context.load_cert_chain(issued.chain, issued.key)
        return context


def make_ca(directory: Path, name: str = "Pli Test CA") -> TestCA:
    """A new CA whose certificate and (empty) CRL are written under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = TestCA(directory=directory, name=name, key=key, cert=cert)
    ca.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca.write_crl()
    return ca
