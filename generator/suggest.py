""" "did you mean" for a misspelt word: only a close match, never merely the least distant one.

A suggestion is a typo fix, so the measure is the optimal-string-alignment edit distance (an
insertion, a deletion, a substitution or a swap of two neighbours is one edit). A word of n
characters may be off by at most max(1, min(2, n // 4)) edits: one slip in a short word, two
in a long one, never a different word that shares a prefix and a suffix
(`cluster_gateway_addr` is 6 edits from `cluster_api_addr`). Keys are words joined by `_`:
when both have as many words, the same limit holds for each word, so two edits that replace
one short word are another key (`proxmox_disk_storage` is not `proxmox_iso_storage`).
Callers add their own hints (which file or dialect defines a key); this module only picks
the word.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_EDITS = 2


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Damerau-Levenshtein without re-editing a swap)."""
    if a == b:
        return 0
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def allowed_edits(word: str) -> int:
    return max(1, min(MAX_EDITS, len(word) // 4))


def _close(word: str, choice: str) -> bool:
    if distance(word, choice) > allowed_edits(word):
        return False
    parts, choice_parts = word.split("_"), choice.split("_")
    if len(parts) != len(choice_parts):
        return True
    return all(distance(a, b) <= allowed_edits(a) for a, b in zip(parts, choice_parts, strict=True))


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice close to word (case-insensitively, see the module), the nearest first
    and then the alphabetically first; None when no choice is that close."""
    folded = word.casefold()
    best: tuple[int, str] | None = None
    for choice in choices:
        if choice == word or not _close(folded, choice.casefold()):
            continue
        edits = distance(folded, choice.casefold())
        if best is None or (edits, choice) < best:
            best = (edits, choice)
    return best[1] if best else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """The hint text for closest(), or "" when nothing is close."""
    found = closest(word, choices)
    return f"did you mean {found!r}?" if found else ""
