"""Option labels: A, B, ..., Z, then AA, AB, ..., ZZ. The one place labels are made and read.

Benchmarks rarely go past five options, but a user's file may hold a long differential list.
Past Z, labels continue the way spreadsheet columns do (Z, AA, AB, ..., AZ, BA, ..., ZZ): a 27th
option is AA and a 30th AD. Two letters cover `MAX_OPTIONS` = 702 options; a row with more is
refused at load with its reason (medprobe.benchmarks.custom), so every label a prompt shows can
be parsed back (medprobe.parsing.parse_letter). Presets whose official script letters options
with one character (MedEvalKit's `chr(ord('a') + i)`) score a row past Z as invalid, with a reason.
"""

from __future__ import annotations

#: one- and two-letter labels (A..Z, AA..ZZ)
MAX_OPTIONS = 26 + 26 * 26


def letter(i: int) -> str:
    """The label of the option at position `i` (0 -> A, 25 -> Z, 26 -> AA, 701 -> ZZ)."""
    if not 0 <= i < MAX_OPTIONS:
        raise ValueError(f"option position {i} has no label; medprobe labels at most {MAX_OPTIONS} options (A-ZZ)")
    if i < 26:
        return chr(65 + i)
    return chr(64 + i // 26) + chr(65 + i % 26)


#: every label in order; `LETTERS[:n]` are the labels of an n-option question
LETTERS: tuple[str, ...] = tuple(letter(i) for i in range(MAX_OPTIONS))
_INDEX = {label: i for i, label in enumerate(LETTERS)}


def letter_index(label: str) -> int:
    """The position a label names ('A' -> 0, 'AA' -> 26); ValueError when it is not a label."""
    try:
        return _INDEX[label.strip().upper()]
    except KeyError:
        raise ValueError(f"{label!r} is not an option label (A-Z, AA-ZZ)") from None


def letter_pattern(n_options: int, lowercase: bool = True) -> str:
    """A regex group (no capture) matching exactly the labels of an n-option question.

    Up to 26 options this is the one-letter class the parsers always used (`[A-Za-z]`, or `[A-Z]`
    with lowercase=False), so their behaviour there is unchanged. Past Z the in-range two-letter
    labels come first (tried before a lone letter) and are matched in capitals only: a lowercase
    pair is a word ("an", "is"), never a label.
    """
    one = "[A-Za-z]" if lowercase else "[A-Z]"
    if n_options <= 26:
        return one
    last = min(n_options, MAX_OPTIONS) - 1
    pairs = []
    for first in range(1, last // 26 + 1):  # A?, B?, ... up to the last label's first letter
        top = 25 if first < last // 26 else last % 26
        pairs.append(f"{chr(64 + first)}[A-{chr(65 + top)}]")
    return f"(?:(?-i:{'|'.join(pairs)})|{one})"
