"""What the directory packages offer is what their ``__all__`` says, and no more."""

from __future__ import annotations

import directory
import messaging.directory
import messaging.ins


def test_the_directory_package_exports_its_implementations_and_migrate():
    assert sorted(directory.__all__) == ["InMemoryDirectory", "SqlDirectory", "migrate"]
    for name in directory.__all__:
        assert getattr(directory, name)


def test_the_port_module_lists_every_public_name_it_defines():
    defined = {
        name
        for name, value in vars(messaging.directory).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == "messaging.directory"
    }
    assert defined == set(messaging.directory.__all__) - {"COUNT_LIMIT", "MAX_PAGE_SIZE"}


def test_both_implementations_have_every_method_of_the_port():
    port = {name for name in vars(messaging.directory.Directory) if not name.startswith("_")}
    for implementation in (directory.SqlDirectory, directory.InMemoryDirectory):
        assert port <= set(dir(implementation)), implementation


def test_the_ins_module_lists_its_public_names():
    assert {"Ins", "QualifiedIdentity", "patient_address", "nir_key", "InvalidINS"} <= set(
        messaging.ins.__all__
    )
