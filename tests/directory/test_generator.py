"""The benchmark's generator writes files the directory reads, the same ones every time."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.gen_extraction import generate
from directory.extraction import HEADER, read_extraction
from messaging.types import MailboxKind


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others():
    assert list(generate(200, seed=3)) == list(generate(200, seed=3))
    assert list(generate(200, seed=3)) != list(generate(200, seed=4))


def test_a_generated_file_is_a_valid_and_realistic_extraction():
    lines = list(generate(2000, seed=5, duplicates=0.01))
    assert lines[0] == HEADER
    rows = list(read_extraction(lines))
    assert len(rows) == 2000
    kinds = Counter(row.kind for row in rows)
    assert 0.75 < kinds[MailboxKind.PER] / 2000 < 0.95 and kinds[MailboxKind.ORG] > 100
    addresses = Counter(row.address for row in rows)
    assert any(count > 1 for count in addresses.values())
    text = b"".join(lines).decode()
    for sample in ("é", "-", "'", "CEDEX", "|2A|", "|True|", "|False|", "|0|"):
        assert sample in text, sample
    per = next(row for row in rows if row.kind is MailboxKind.PER)
    assert per.values[4] == per.values[2] + per.values[3]  # idNatPS = type + identifier
    org = next(row for row in rows if row.kind is MailboxKind.ORG)
    assert org.values[2:5] == ("", "", "") and org.values[6]


def test_the_generator_runs_from_the_command_line(tmp_path: Path):
    out = tmp_path / "x.csv"
    subprocess.run(
        [sys.executable, "-m", "bench.gen_extraction", "-n", "50", "-o", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == b"".join(generate(50))
