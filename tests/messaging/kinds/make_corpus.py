"""Write the negative corpus to ``corpus/``: ``python -m tests.messaging.kinds.make_corpus``.

Each case of :mod:`tests.messaging.kinds.corpus_cases` becomes one file, and
``corpus/MANIFEST.tsv`` lists file, reader, expected code and why, so that the corpus can be fed
to other implementations (the webmail, another operator's reader) as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.messaging.kinds.corpus_cases import CASES

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = "MANIFEST.tsv"


def manifest() -> str:
    lines = ["file\treader\tcode\twhy"]
    lines += [f"{c.name}\t{c.reader}\t{c.code}\t{c.why}" for c in CASES]
    return "\n".join(lines) + "\n"


def main() -> int:
    CORPUS.mkdir(exist_ok=True)
    for stale in CORPUS.iterdir():
        if stale.is_file() and stale.name != "README.md":
            stale.unlink()
    for case in CASES:
        (CORPUS / case.name).write_bytes(case.build())
    (CORPUS / MANIFEST).write_text(manifest(), encoding="utf-8")
    sys.stdout.write(f"wrote {len(CASES)} cases to {CORPUS}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
