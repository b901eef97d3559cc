"""Run the real ``pli`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FAST_KDF = {
    "PLI_PASSPHRASE_OPSLIMIT": "1",
    "PLI_PASSPHRASE_MEMLIMIT": "8192",
    "PLI_APP_PASSWORD_OPSLIMIT": "1",
    "PLI_APP_PASSWORD_MEMLIMIT": "8192",
}
# Every listener of `pli serve` on a free port: tests run beside each other (and beside other
# work on the machine), so the demo's fixed ports would collide.
FREE_PORTS = {
    "PLI_SMTP_PORT": "0",
    "PLI_SUBMISSION_PORT": "0",
    "PLI_SUBMISSIONS_PORT": "0",
    "PLI_IMAP_PORT": "0",
    "PLI_IMAPS_PORT": "0",
}


@dataclass
class Pli:
    """A data directory and the environment to run ``pli`` against it."""

    home: Path
    database_url: str

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLI_")}
        env.update(FAST_KDF)
        env.update(FREE_PORTS)
        env["PLI_HOME"] = str(self.home)
        env["PLI_DATABASE_URL"] = self.database_url
        return env

    def run(
        self, *args: str, stdin: str = "", check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "pli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"pli {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result
