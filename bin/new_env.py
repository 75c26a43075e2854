#!/usr/bin/env python3
"""Write ``.env`` from ``.env.example`` with every ``change-me`` replaced by a secret of its own.

Run from the checkout: ``python3 bin/new_env.py``. Each placeholder gets its own
``secrets.token_urlsafe(48)`` (64 characters), so no secret is short and no two hold the same value:
the start-up checks refuse both (backend/core/secret_checks.py). Commented settings get theirs too,
so uncommenting one (``DJANGO_SUPERUSER_PASSWORD`` for the first admin) needs no edit.
An existing ``.env`` is never overwritten. Standard library only: it runs before any install.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

PLACEHOLDER = "change-me"


def fill(text: str) -> tuple[str, list[str]]:
    """``text`` with each placeholder replaced by a fresh secret; the settings filled (commented ones too)."""
    lines, filled = [], []
    for line in text.splitlines():
        if PLACEHOLDER in line:
            filled.append(line.lstrip("# ").split("=", 1)[0].strip())
            while PLACEHOLDER in line:
                line = line.replace(PLACEHOLDER, secrets.token_urlsafe(48), 1)
        lines.append(line)
    return "\n".join(lines) + "\n", filled


def main(argv: list[str] | None = None) -> int:
    """Write the file; exit 1 (writing nothing) when it exists already."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=Path(".env.example"))
    parser.add_argument("--output", type=Path, default=Path(".env"))
    args = parser.parse_args(argv)
    if args.output.exists():
        print(f"{args.output} exists: left as it is (remove it first to write a new one)", file=sys.stderr)
        return 1
    text, filled = fill(args.example.read_text())
    args.output.touch(mode=0o600)  # secrets: readable by their owner only
    args.output.write_text(text)
    print(f"wrote {args.output}: a new secret for {', '.join(filled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
