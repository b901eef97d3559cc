"""Every text the webmail shows exists in French and in English (web/frontend/src/i18n.js):
the keys the screens name, and the keys made from the server's codes (message kinds,
access-history actions, agenda states). A missing key would show the key itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from messaging.access_history import Action
from messaging.types import MessageKind

SOURCES = Path(__file__).resolve().parents[2] / "web" / "frontend" / "src"


def _table(name: str) -> set[str]:
    text = (SOURCES / "i18n.js").read_text(encoding="utf-8")
    block = re.search(rf"^const {name} = \{{\n(.*?)^\}};", text, re.MULTILINE | re.DOTALL)
    assert block is not None, f"no table {name} in i18n.js"
    return set(re.findall(r"^  (\w+):", block.group(1), re.MULTILINE))


FRENCH = _table("fr")
ENGLISH = _table("en")


def test_english_has_every_french_text_and_no_other() -> None:
    assert len(FRENCH) > 100, "control: the French table was read"
    assert sorted(FRENCH - ENGLISH) == []
    assert sorted(ENGLISH - FRENCH) == []


def test_every_key_the_screens_name_exists() -> None:
    used: set[str] = set()
    for source in SOURCES.glob("*.js"):
        used.update(re.findall(r"\bt\(\"(\w+)\"", source.read_text(encoding="utf-8")))
    assert len(used) > 100, "control: the screens' keys were found"
    assert sorted(used - FRENCH) == []


@pytest.mark.parametrize(
    ("prefix", "codes"),
    [
        ("kind_", [k.value for k in MessageKind]),
        ("action_", [a.value for a in Action]),
        (
            "appointment_",
            ["proposed", "accepted", "tentative", "declined", "cancelled", "countered"],
        ),
    ],
)
def test_every_code_the_server_sends_has_its_words(prefix: str, codes: list[str]) -> None:
    # The screens turn "consent-request" into kind_consent_request (kindLabel, history).
    missing = [c for c in codes if prefix + c.replace("-", "_") not in FRENCH]
    assert missing == []
