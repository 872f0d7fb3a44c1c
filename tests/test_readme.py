"""The README's quick start, verbatim: on a clean copy of the project (sharing this
checkout's virtual environment), each command runs as written and prints what the README
says under it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- quick-start[^>]*-->\s*```sh\n(.*?)```", re.S)


def quick_start() -> list[tuple[str, str]]:
    """(command, what it prints) pairs of the README's quick-start block."""
    block = BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block, "README.md has no quick-start block"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    pairs = []
    for command, expected in zip(lines[::2], lines[1::2], strict=True):
        assert expected.startswith("# → "), expected
        pairs.append((command, expected.removeprefix("# → ")))
    return pairs


def _clean_copy(into: Path) -> Path:
    """The tracked files as a fresh clone has them, with this checkout's built .venv and
    translations (timestamps kept, so make finds nothing to rebuild)."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    built = [p.relative_to(ROOT).as_posix() for p in (ROOT / "locales").rglob("*.mo")]
    for name in [*files, *built]:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    (into / ".venv").symlink_to(ROOT / ".venv")
    return into


@pytest.mark.skipif(not (ROOT / ".venv" / ".installed").exists(), reason="needs make install")
def test_the_quick_start_works_verbatim_on_a_clean_copy(tmp_path: Path) -> None:
    project = _clean_copy(tmp_path / "regulars")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BUSINESS_CONFIG")}
    for command, expected in quick_start():
        done = subprocess.run(
            command, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert expected in done.stdout, (command, expected, done.stdout[-2000:])
        assert "Traceback" not in done.stderr, (command, done.stderr[-2000:])
