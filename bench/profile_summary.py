"""Summarise a py-spy raw profile (collapsed stacks, ``--subprocesses``) per worker role.

Roles: ``parent`` (the worker's main process: consumer, event dispatch, result handling) and ``pool``
(prefork pool processes running the tasks). Prints, per role, the share of samples spent inside each
of the most frequent functions (inclusive), so "74 % under store_result" reads straight off.

    .venv/bin/python -m bench.profile_summary var/prof/platform.txt --top 25
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]*)(?::\d+)?\)$")


def role_of(frames: list[str]) -> str:
    """Pool processes run billiard's worker loop; everything else is the parent."""
    return "pool" if any("workloop" in frame for frame in frames) else "parent"


def summarise(path: str) -> dict[str, tuple[int, Counter[str]]]:
    """Per role: total samples and inclusive sample counts per function."""
    totals: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            frames = stack.split(";")[1:]
            role = role_of(frames)
            count = int(count_text)
            totals[role] += count
            seen = set()
            for frame in frames:
                match = FRAME.match(frame)
                name = f"{match['func']} ({match['file']})" if match else frame
                if name not in seen:
                    seen.add(name)
                    inclusive[role][name] += count
    return {role: (totals[role], inclusive[role]) for role in totals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--grep", default="", help="only functions whose name or file contains this")
    args = parser.parse_args()
    for role, (total, counts) in sorted(summarise(args.profile).items()):
        print(f"== {role}: {total} samples")
        shown = [(name, n) for name, n in counts.most_common() if args.grep in name]
        for name, n in shown[: args.top]:
            print(f"{100 * n / total:6.1f} %  {name}")


if __name__ == "__main__":
    main()
