"""Scrub a secret (an API key) out of any text before it is stored, printed or cut.

A server that echoes a request back can return the key in many forms, and each must go before the
text reaches records.sqlite, an error message or a report (issue 8, part 7):

* verbatim, and any verbatim run of `FRAGMENT` or more of its characters (a key cut by the server);
* URL-encoded: `quote`, `quote_plus`, lower- or upper-case hex, encoded twice (`%252F`);
* JSON- or JS-escaped: `\\/`, `\\u002f` (escaped once or more), HTML character references;
* spaced out: characters separated by whitespace (or JSON-escaped `\\n`, `\\t`);
* base64 and base64url of the key, alone or inside a longer base64 string (`user:KEY` in Basic auth):
  the key's bytes can start at any of the 3 offsets of a base64 group, and each offset gives a
  different core of characters that only the key determines (the way secret scanners such as
  GitHub's match encoded tokens); plus hex of the key's bytes.

Every form is one regex built per key, where each character may appear in any of its encodings,
so mixed forms (a JSON-escaped, URL-encoded echo) match too. Cutting text (error excerpts, the
stored-text cap) goes through `Scrubber.cut`: it scrubs first, so a cut never splits a key the
scrubber could still see whole, then drops a key prefix left at the end of the cut.
Keys shorter than `MIN_FUZZY` characters are scrubbed verbatim only: the tolerant forms of a very
short string would match ordinary text.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Sequence

#: what a scrubbed secret becomes
MASK = "***"
#: shortest secret scrubbed in its encoded forms too (shorter: verbatim only)
MIN_FUZZY = 8
#: shortest verbatim run of a secret's characters scrubbed on its own (a key cut or split by a server)
FRAGMENT = 8
#: shortest key prefix dropped from the end of a cut excerpt
CUT_PREFIX = 3
# whitespace between the characters of a spaced-out key, raw or JSON-escaped
_GAP = r"(?:\s|\\+[nrt])*"
# generic credential shapes, for error messages only (model replies may say "bearer" legitimately)
_GENERIC = re.compile(r"(Bearer\s+)\S+|\bsk-[A-Za-z0-9_\-]{8,}", re.IGNORECASE)


class Scrubber:
    """Removes the given secrets (None and empty ones are ignored) from text in every encoding above."""

    def __init__(self, *secrets: str | None):
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        fuzzy = [s for s in self.secrets if len(s) >= MIN_FUZZY]
        self._patterns = _compiled(tuple(fuzzy)) if fuzzy else ()

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __call__(self, text: str) -> str:
        """`text` with every secret form replaced by `MASK`."""
        if not self.secrets or not text:
            return text
        spans = self.spans(text)
        if not spans:
            return text
        out, last = [], 0
        for start, end in spans:
            out += [text[last:start], MASK]
            last = end
        out.append(text[last:])
        return "".join(out)

    def message(self, text: str) -> str:
        """An error message or log line: the secrets, plus anything shaped like a bearer token or sk- key."""
        return _GENERIC.sub(lambda m: (m.group(1) or "") + MASK, self(text))

    def cut(self, text: str, limit: int) -> str:
        """The first `limit` characters of the scrubbed text, with no key prefix left at the cut."""
        text = self(text)
        if len(text) <= limit:
            return text
        head = text[:limit]
        for secret in self.secrets:
            for n in range(min(len(secret), len(head)), CUT_PREFIX - 1, -1):
                if head.endswith(secret[:n]):
                    return head[:-n] + MASK
        return head

    def tokens(self, tokens: Sequence[str]) -> list[str]:
        """Logprob tokens: each scrubbed, and every token holding part of a secret spread over several masked."""
        out = [self(t) for t in tokens]
        spans, end = self.spans("".join(tokens)), 0
        for i, token in enumerate(tokens):
            start, end = end, end + len(token)
            if any(a < end and start < b for a, b in spans):
                out[i] = MASK
        return out

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Sorted, merged (start, end) spans of `text` that hold a secret in some form."""
        found: list[tuple[int, int]] = []
        for secret in self.secrets:
            start = text.find(secret)
            while start >= 0:
                found.append((start, start + len(secret)))
                start = text.find(secret, start + 1)
        for pattern in self._patterns:
            found += [m.span() for m in pattern.finditer(text)]
        for secret in self.secrets:
            if len(secret) > FRAGMENT:
                found += _fragments(text, secret)
        return _merged(found)


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _fragments(text: str, secret: str) -> list[tuple[int, int]]:
    """Verbatim runs of >= FRAGMENT characters of `secret`. Any such run contains one of the secret's
    aligned blocks of FRAGMENT // 2 characters, so a `str.find` per block finds every candidate fast."""
    block = FRAGMENT // 2
    found = []
    for k in range(0, len(secret) - block + 1, block):
        piece = secret[k : k + block]
        p = text.find(piece)
        while p >= 0:
            left = 0
            while p - left > 0 and k - left > 0 and text[p - left - 1] == secret[k - left - 1]:
                left += 1
            right = block
            while p + right < len(text) and k + right < len(secret) and text[p + right] == secret[k + right]:
                right += 1
            if left + right >= FRAGMENT:
                found.append((p - left, p + right))
            p = text.find(piece, p + 1)
    return found


@functools.lru_cache(maxsize=16)
def _compiled(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    # one pattern per needle: each then starts with a small first-character set the engine skips by,
    # which scans 2x faster than one alternation of them all
    needles: set[str] = set()
    for secret in secrets:
        raw = secret.encode()
        needles |= {secret, raw.hex(), raw.hex().upper(), *_base64_cores(raw)}
    return tuple(re.compile(_GAP.join(_char(c) for c in needle)) for needle in sorted(needles))


def _base64_cores(raw: bytes) -> list[str]:
    """For each offset of the key within a base64 group, the characters whose 6 bits all come from
    the key (they are the same whatever surrounds it), in standard and URL-safe alphabets."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        first = -(-8 * offset // 6)  # ceil: the first character with no bit of the padding bytes
        last = 8 * (offset + len(raw)) // 6  # floor: past the last character with no bit of what follows
        core = encoded[first:last]
        cores += [core, core.replace("+", "-").replace("/", "_")]
    return [c for c in cores if len(c) >= MIN_FUZZY]


def _hex(value: int, width: int) -> str:
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{width}x}")


@functools.lru_cache(maxsize=512)
def _char(c: str) -> str:
    """A regex for one character in any of its encodings (see the module docstring)."""
    # every form starts with a literal character, so the regex engine can skip ahead by its first-character set
    forms = [re.escape(c), r"\\\\*" + re.escape(c)]  # literal, or backslash-escaped (JSON's \/, doubled)
    forms.append("".join("%(?:25)*" + _hex(b, 2) for b in c.encode()))  # URL-encoded, once or twice
    code = ord(c)
    if code > 0xFFFF:  # JSON writes astral characters as a surrogate pair
        code -= 0x10000
        units = (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
    else:
        units = (code,)
    forms.append("".join(r"\\\\*u" + _hex(u, 4) for u in units))
    forms += [f"&#0*{ord(c)};", "&#[xX]0*" + _hex(ord(c), 1) + ";"]
    if c == " ":
        forms.append(r"\+")  # quote_plus
    return "(?:" + "|".join(forms) + ")"
