"""A new user's machine, made by :func:`make_newcomer`: a clean clone of the repository and a fresh virtual environment made from it.

Both are made once per test session, in a temporary folder: the clone with ``git clone`` of the
committed HEAD (what a new user gets; set ``OPS_OBSERVE_NEWCOMER_TREE=1`` to copy the working tree
instead, uncommitted files included, while developing), the environment with ``python -m venv`` and
the README's own first command, ``python3 -m pip install . ./plugins/postgres ./plugins/redis``, run
in the clone, then ``pip install fastapi django`` as the quick start says. pip reads this machine's
configuration (its index, a local one here) exactly as a user's pip would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE_ENV_VAR = "OPS_OBSERVE_NEWCOMER_TREE"
INSTALL_TIMEOUT = 600


@dataclass(frozen=True)
class Newcomer:
    """The clone and the virtual environment a new user has after the README's install command."""

    clone: Path
    venv: Path

    def bin(self, name: str) -> str:
        """A console script of the environment (``python``, ``ops-observe``, ``uvicorn``...)."""
        return str(self.venv / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a user's shell would have, with the venv activated."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "OPS_OBSERVE_SETTINGS")}
        env.update(VIRTUAL_ENV=str(self.venv), PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
        env.update(PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
        return env


def readme_install_command(readme: str) -> list[str]:
    """The README's first command, up to ``serve``: ``python3 -m pip install . ./plugins/...``."""
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block is not None, "the README has no bash block"
    install = block.group(1).splitlines()[0].split("&&")[0].strip()
    assert install.startswith("python3 -m pip install "), install
    return shlex.split(install)


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    assert result.returncode == 0, f"{shlex.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def _checkout(target: Path) -> None:
    if os.environ.get(TREE_ENV_VAR):
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            if (ROOT / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target / name)
        return
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, capture_output=True, timeout=120)


@contextmanager
def make_newcomer() -> Iterator[Newcomer]:
    """A fresh clone and a fresh virtual environment with the README's install done, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="ops-observe-newcomer-"))
    try:
        clone, venv = base / "ops_observe", base / "venv"
        clone.mkdir()
        _checkout(clone)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        user = Newcomer(clone, venv)
        install = readme_install_command((clone / "README.md").read_text())
        _run([user.bin("python"), *install[1:]], clone, user.env())  # python3 -> the venv's python
        _run([user.bin("python"), "-m", "pip", "install", "fastapi", "django"], clone, user.env())
        yield user
    finally:
        shutil.rmtree(base, ignore_errors=True)
