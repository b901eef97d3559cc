"""TLS material of an instance: server certificate, client certificate, trust anchor.

A real deployment points the settings at certificates issued under the trust space's
authority (``tls_cert``, ``tls_key``, ``trust_anchor``, ``trust_crl``). ``pli init`` makes a
local authority under ``$PLI_HOME/tls/`` so that a laptop demo speaks TLS at once: its CA
certificate (``ca.pem``) is what a mail client is told to trust, and the same leaf serves
as the server certificate (``serverAuth``) and as the relay's client certificate
(``clientAuth``). The CA's private key is kept only to issue that leaf and is never served.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsFiles", "ensure_local_authority", "server_context", "client_context"]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    """The leaf followed by its chain, PEM."""
    key: Path
    ca: Path
    """The authority peers' and clients' certificates must chain to."""
    crl: Path | None = None


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_local_authority(directory: Path, hostnames: tuple[str, ...]) -> TlsFiles:
    """Create (once) a local CA and a leaf for ``hostnames`` under ``directory``."""
    files = TlsFiles(
        cert=directory / "server.pem", key=directory / "server.key", ca=directory / "ca.pem"
    )
    if files.cert.exists() and files.key.exists() and files.ca.exists():
        return files
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Pli local CA {hostnames[0]}")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(
        directory / "ca.key",
        ca_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    _write_private(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    files.ca.write_bytes(_pem(ca_cert))
    files.cert.write_bytes(_pem(leaf) + _pem(ca_cert))
    return files


def server_context(files: TlsFiles, *, require_client_cert: bool = False) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``require_client_cert``, peers must chain to the CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.3 session tickets. A ticket is encrypted under a key that lives as long as
    # the process, which weakens forward secrecy, and mail clients keep long sessions, so
    # resumption saves little. And tickets arrive after the handshake, when a client sends
    # its first command: offlineimap's imaplib2 reads them on its reader thread while its
    # main thread writes CAPABILITY on the same TLS connection, and under load that race
    # lost the command after STARTTLS (the session then waited for its login timeout) in
    # about one sync in four; without tickets, none in 25 under the same load.
    context.num_tickets = 0
    context.load_cert_chain(files.cert, files.key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(files.ca))
        if files.crl is not None:
            context.load_verify_locations(cafile=str(files.crl))
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS 1.2+ client context trusting the CA and presenting our certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context
