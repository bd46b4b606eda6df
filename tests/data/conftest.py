"""Running code as an unprivileged user, so that permission errors are tested for real.

Root reads a mode-000 file, so when the suite runs as root the code under test runs under
``setpriv`` as ``nobody``; as any other user it runs as that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

NOBODY = 65534


def unprivileged_prefix() -> list[str]:
    """Command prefix that runs as a user to whom a mode-000 file is unreadable."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop privileges to test permissions")
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def raised_unprivileged() -> Callable[[str], str]:
    """Run Python ``code`` unprivileged; it must fail, and this returns its traceback's last line."""
    def run(code: str) -> str:
        result = subprocess.run([*unprivileged_prefix(), sys.executable, "-c", code],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        return result.stderr.strip().splitlines()[-1]

    return run


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder the unprivileged user can enter (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="similar-users-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)
