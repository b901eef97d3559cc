"""Every benchmark, each in its quick form: `make bench` (or `python -m bench.run_all`).

Each benchmark prints its own table (figures and the ratio to its peer); the full runs and
their options are in each module's docstring and in ``docs/PERFORMANCE.md``. A benchmark that
fails is reported and the others still run; the exit status says whether all passed.
"""

from __future__ import annotations

import subprocess
import sys

RUNS: list[list[str]] = [
    ["bench.bench_delivery", "--quick"],
    ["bench.bench_patient_delivery", "--quick"],
    ["bench.bench_directory", "--rows", "20000", "--queries", "200"],
    ["bench.bench_imap_state", "--messages", "2000", "--repeat", "3"],
    ["bench.bench_imap", "-n", "1000"],
    ["bench.bench_smtp", "--quick"],
    ["bench.bench_api", "--quick"],
    ["bench.bench_webmail", "--runs", "3"],
]


def main() -> int:
    failed = []
    for module, *args in RUNS:
        sys.stdout.write(f"\n## {module} {' '.join(args)}\n\n")
        sys.stdout.flush()
        if subprocess.run([sys.executable, "-m", module, *args], check=False).returncode:
            failed.append(module)
    if failed:
        sys.stdout.write(f"\nfailed: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
