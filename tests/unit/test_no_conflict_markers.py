"""No file the repository tracks keeps a merge-conflict marker (one once shipped inside the docs)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A marker is a whole line: seven '<' or '>' followed by a space and a name, or seven '=' alone.
MARKER = re.compile(r"^(<{7} \S|>{7} \S|={7}$)", re.MULTILINE)


def tracked_text_files() -> list[Path]:
    """Every file git tracks that reads as UTF-8 text."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = []
    for name in names.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            paths.append(path)
    return paths


def test_marker_pattern_catches_a_conflict():
    """The pattern itself finds each of the three marker lines."""
    text = "a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> branch\n"
    assert len(MARKER.findall(text)) == 3


def test_no_tracked_file_holds_a_conflict_marker():
    """A leftover marker names its file and line."""
    files = tracked_text_files()
    assert len(files) > 100  # the listing really ran
    found = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path in files
        for text in [path.read_text(encoding="utf-8")]
        for match in MARKER.finditer(text)
    ]
    assert found == []
