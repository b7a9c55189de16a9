"""The attribution section of MODEL_CARD.md: the CC BY Mutopia pieces the weights were trained on.

    python -m training.notice ../shared/train
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from training.corpus import PARTIAL


def cc_by_pieces(root: Path) -> list[dict[str, str]]:
    """The Mutopia pieces under a CC BY licence that the corpus reader takes (no ``\\partial``)."""
    folder = root / "mutopia"
    with open(folder / "index.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    used = []
    for r in rows:
        if "Attribution" not in r["licence"]:
            continue
        if any(PARTIAL.search(p.read_text(errors="ignore")) for p in (folder / r["folder"]).rglob("*.ly")):
            continue
        used.append(r)
    return used


def main(argv: list[str] | None = None) -> int:
    root = Path((argv or sys.argv[1:])[0])
    print("| piece | composer | typeset by | licence | Mutopia id |\n|---|---|---|---|---|")
    for r in cc_by_pieces(root):
        print(f"| {r['title']} | {r['composer']} | {r['maintainer']} | {r['licence']} | {r['mutopia_id']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
