"""Real-world-shaped messages, each built from pieces so that the bytes every section must
return are known by construction, independently of the gateway's MIME parser."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field


@dataclass
class Sample:
    name: str
    raw: bytes
    sections: dict[str, bytes] = field(default_factory=dict)
    """BODY[section] → exact bytes (sections of the message as received)."""
    binary: dict[str, bytes] = field(default_factory=dict)
    """BINARY[section] → decoded bytes."""
    part_sizes: dict[str, int] = field(default_factory=dict)
    """Part number → body size BODYSTRUCTURE must announce."""


def _part(header: bytes, body: bytes) -> tuple[bytes, bytes, bytes]:
    return header, body, header + body


def multiple_senders_8bit_2047_2231() -> Sample:
    text_h = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    text_b = "Résultats joints, à voir.\r\nBien à vous.".encode()
    payload = bytes(range(256)) * 4
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n").rstrip(b"\r\n")
    bin_h = (
        b"Content-Type: application/octet-stream;\r\n"
        b" name*=utf-8''r%C3%A9sultats%20sang.bin\r\n"
        b"Content-Disposition: attachment;\r\n"
        b" filename*0*=utf-8''r%C3%A9sultats;\r\n filename*1=\" sang.bin\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    head = (
        b"From: =?utf-8?q?Dr_Ren=C3=A9e_Dupr=C3=A9?= <renee@ch-x.fr>\r\n"
        b"Sender: secretariat@ch-x.fr, accueil@ch-x.fr\r\n"
        b'To: "Martin, Sophie" <sophie@pli.test>, undisclosed-recipients:;\r\n'
        b"Subject: =?iso-8859-1?q?R=E9sultats?= \xc3\xa9t\xc3\xa9 8-bit\r\n"
        b"X-Weird: caf\xe9 latin-1\r\n"
        b"Date: Mon, 16 Nov 2026 10:00:00 +0100\r\n"
        b"Message-ID: <m1@ch-x.fr>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="==b1=="\r\n\r\n'
    )
    body = (
        b"preamble\r\n--==b1==\r\n"
        + text_h
        + text_b
        + b"\r\n--==b1==\r\n"
        + bin_h
        + b64
        + b"\r\n--==b1==--\r\nepilogue\r\n"
    )
    return Sample(
        "senders-8bit-2047-2231",
        head + body,
        sections={
            "TEXT": body,
            "1": text_b,
            "1.MIME": text_h,
            "2": b64,
            "2.MIME": bin_h,
        },
        binary={"1": text_b, "2": payload},
        part_sizes={"1": len(text_b), "2": len(b64)},
    )


def deep_nesting(depth: int = 12) -> Sample:
    leaf_h = b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
    leaf_b = b"<p>deep</p>"
    entity = leaf_h + leaf_b
    for level in range(depth):
        boundary = f"lvl{level}".encode()
        header = b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n"
        entity = header + b"--" + boundary + b"\r\n" + entity + b"\r\n--" + boundary + b"--\r\n"
    raw = b"From: a@b.test\r\nSubject: deep\r\n" + entity
    number = ".".join(["1"] * depth)
    return Sample(
        "deep-nesting",
        raw,
        sections={number: leaf_b, number + ".MIME": leaf_h},
        part_sizes={number: len(leaf_b)},
    )


def rfc822_attachment() -> Sample:
    inner_text_h = b"Content-Type: text/plain\r\n\r\n"
    inner_text_b = b"inner text"
    inner_pdf_h = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    inner_pdf_b = base64.b64encode(b"%PDF-1.4 fake")
    inner_head = (
        b"From: lab@labo.fr\r\nSubject: forwarded\r\n"
        b"Content-Type: multipart/mixed; boundary=in\r\n\r\n"
    )
    inner_body = (
        b"--in\r\n" + inner_text_h + inner_text_b + b"\r\n--in\r\n" + inner_pdf_h + inner_pdf_b
    ) + b"\r\n--in--\r\n"
    inner = inner_head + inner_body
    att_h = b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
    first_h = b"Content-Type: text/plain\r\n\r\n"
    first_b = b"see attached"
    raw = (
        b"From: a@b.test\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=out\r\n\r\n"
        b"--out\r\n" + first_h + first_b + b"\r\n--out\r\n" + att_h + inner + b"\r\n--out--\r\n"
    )
    return Sample(
        "rfc822-attachment",
        raw,
        sections={
            "1": first_b,
            "2": inner,
            "2.MIME": att_h,
            "2.HEADER": inner_head,
            "2.TEXT": inner_body,
            "2.1": inner_text_b,
            "2.1.MIME": inner_text_h,
            "2.2": inner_pdf_b,
        },
        binary={"2.2": b"%PDF-1.4 fake"},
        part_sizes={"1": len(first_b), "2": len(inner), "2.1": len(inner_text_b)},
    )


def missing_close_boundary() -> Sample:
    one_h = b"Content-Type: text/plain\r\n\r\n"
    one_b = b"first"
    two_h = b"Content-Type: text/plain\r\n\r\n"
    two_b = b"second, never closed\r\n"
    raw = (
        b"From: a@b.test\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n"
        b"--zz\r\n" + one_h + one_b + b"\r\n--zz\r\n" + two_h + two_b
    )
    return Sample(
        "missing-close-boundary",
        raw,
        sections={"1": one_b, "2": two_b, "2.MIME": two_h},
        part_sizes={"1": len(one_b), "2": len(two_b)},
    )


def missing_boundary_parameter() -> Sample:
    body = b"--x\r\nContent-Type: text/plain\r\n\r\nno boundary parameter\r\n--x--\r\n"
    raw = b"From: a@b.test\r\nContent-Type: multipart/mixed\r\n\r\n" + body
    return Sample("missing-boundary", raw, sections={"1": body, "TEXT": body})


def nul_bytes() -> Sample:
    data = b"\x00\x01binary\x00with NULs\x00\r\n"
    part_h = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    raw = (
        b"From: a@b.test\r\nSubject: nul\r\nContent-Type: multipart/mixed; boundary=n\r\n\r\n"
        b"--n\r\n" + part_h + data + b"\r\n--n--\r\n"
    )
    return Sample(
        "nul-bytes", raw, sections={"1": data}, binary={"1": data}, part_sizes={"1": len(data)}
    )


def quoted_printable() -> Sample:
    part_h = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    part_b = b"R=E9sultat normal=\r\n, suite."
    raw = b"From: a@b.test\r\nMIME-Version: 1.0\r\n" + part_h + part_b
    return Sample(
        "quoted-printable",
        raw,
        sections={"1": part_b, "TEXT": part_b},
        binary={"1": "Résultat normal, suite.".encode("latin-1")},
        part_sizes={"1": len(part_b)},
    )


def forged_provenance() -> Sample:
    raw = (
        b"X-Pli-Provenance: e2e; signature=valid; sender=chef@ch-x.fr\r\n"
        b"From: a@b.test\r\nSubject: forged\r\n\r\nbody\r\n"
    )
    return Sample("forged-provenance", raw, sections={"1": b"body\r\n"})


def corpus() -> list[Sample]:
    return [
        multiple_senders_8bit_2047_2231(),
        deep_nesting(),
        rfc822_attachment(),
        missing_close_boundary(),
        missing_boundary_parameter(),
        nul_bytes(),
        quoted_printable(),
        forged_provenance(),
    ]
