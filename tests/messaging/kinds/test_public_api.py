from __future__ import annotations

import importlib

import pytest

from messaging.kinds.base import KindSpec
from messaging.types import MessageKind

MODULES = [
    "messaging.safexml",
    "messaging.healthid",
    "messaging.ziputil",
    "messaging.cda",
    "messaging.xdm",
    "messaging.kinds.parts",
    "messaging.kinds.issuer",
    "messaging.kinds.document",
    "messaging.kinds.prescription",
    "messaging.kinds.certificate",
]


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_exists_and_the_module_names_its_standards(name):
    module = importlib.import_module(name)
    assert module.__all__, name
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.{public}"
    assert len(set(module.__all__)) == len(module.__all__)
    assert module.__doc__ and any(
        standard in module.__doc__
        for standard in ("RFC", "IHE", "HL7", "XML 1.0", "APPNOTE", "ANS")
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("messaging.kinds.document", MessageKind.DOCUMENT),
        ("messaging.kinds.prescription", MessageKind.PRESCRIPTION),
        ("messaging.kinds.certificate", MessageKind.CERTIFICATE),
    ],
)
def test_each_kind_exports_its_spec_for_the_registry(name, kind):
    spec = importlib.import_module(name).SPEC
    assert isinstance(spec, KindSpec)
    assert (spec.kind, spec.schema_version) == (kind, 1)
    assert spec.description_fr and spec.description_en
