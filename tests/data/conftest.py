"""Running code without the power to override file permissions, so that permission errors are tested for real.

Root reads a mode-000 file because of two capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so when
the suite runs as root the code under test runs under ``setpriv`` with both dropped: it stays root (it
can still read the clone, the venv and pytest's private temporary folders wherever they sit, since root
owns them) but a file or folder whose owner bits forbid it is refused as it would be to anyone. As any
other user the code runs as that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.conftest import ROOT

# The capabilities that let root past permission bits (capabilities(7)).
OVERRIDES = "-dac_override,-dac_read_search"


def unprivileged_prefix() -> list[str]:
    """Command prefix that runs as a user to whom a mode-000 file of its own is unreadable."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop privileges to test permissions")
    # Dropped from the bounding set too, or execve would hand them back to a root process.
    return ["setpriv", f"--inh-caps={OVERRIDES}", f"--bounding-set={OVERRIDES}"]


@pytest.fixture
def raised_unprivileged() -> Callable[[str], str]:
    """Run Python ``code`` unprivileged; it must fail, and this returns its traceback's last line."""
    def run(code: str) -> str:
        result = subprocess.run([*unprivileged_prefix(), sys.executable, "-c", code],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        return result.stderr.strip().splitlines()[-1]

    return run
