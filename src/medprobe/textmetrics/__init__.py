"""Text metrics for generated reports: lexical metrics as pycocoevalcap computes them, clinical ones via radeval.

A lower layer than scoring and results (it imports neither). The convenience functions tokenise raw text
with `tokens` (pycocoevalcap's PTB pipeline, see medprobe.textmetrics.tokenize) and then score exactly as
pycocoevalcap does (medprobe.textmetrics.coco):

    from medprobe import textmetrics
    textmetrics.rouge_l("No acute findings.", "No acute cardiopulmonary process.")
    textmetrics.bleu(["heart size normal"], ["the heart size is normal"], n=4)

Corpus statistics and their study-level bootstrap: medprobe.textmetrics.corpus. METEOR (Java):
medprobe.textmetrics.meteor. Clinical metrics (optional extra `medprobe[report]`): medprobe.textmetrics.clinical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from medprobe.textmetrics import coco
from medprobe.textmetrics.tokenize import (
    TOKENIZERS,
    prep_tokens,
    r2gen_clean,
    r2gen_tokens,
    tokens,
)

__all__ = ["TOKENIZERS", "bleu", "bleus", "cider", "joined", "prep_tokens", "r2gen_clean", "r2gen_tokens",
           "rouge_l", "tokens"]

Tokenizer = Callable[[str], list[str]]


def joined(text: str, tokenizer: Tokenizer = tokens) -> str:
    """`text` tokenised and joined by single spaces: the form pycocoevalcap's scorers expect."""
    return " ".join(tokenizer(text))


def _refs(references: Sequence[str | Sequence[str]], tokenizer: Tokenizer) -> list[list[str]]:
    return [[joined(r, tokenizer)] if isinstance(r, str) else [joined(x, tokenizer) for x in r] for r in references]


def rouge_l(candidate: str, reference: str | Sequence[str], tokenizer: Tokenizer = tokens) -> float:
    """Per-study ROUGE-L F (pycocoevalcap `Rouge`, beta 1.2) of one candidate against its reference(s)."""
    refs = [reference] if isinstance(reference, str) else list(reference)
    return coco.rouge_l_score(joined(candidate, tokenizer), [joined(r, tokenizer) for r in refs])


def bleus(candidates: Sequence[str], references: Sequence[str | Sequence[str]], n: int = 4,
          tokenizer: Tokenizer = tokens) -> list[float]:
    """Corpus BLEU-1..n (pycocoevalcap `Bleu(n)`): one reference string, or a list of them, per candidate."""
    return coco.corpus_bleu([joined(c, tokenizer) for c in candidates], _refs(references, tokenizer), n)


def bleu(candidates: Sequence[str], references: Sequence[str | Sequence[str]], n: int = 4,
         tokenizer: Tokenizer = tokens) -> float:
    """Corpus BLEU-n (pycocoevalcap `Bleu(n)`, its "closest" reference length and tiny/small constants)."""
    return bleus(candidates, references, n, tokenizer)[n - 1]


def cider(candidates: Sequence[str], references: Sequence[str | Sequence[str]], tokenizer: Tokenizer = tokens) -> float:
    """Corpus CIDEr-D (pycocoevalcap `Cider`): idf from the references of exactly these studies."""
    scores = coco.cider_scores([joined(c, tokenizer) for c in candidates], _refs(references, tokenizer))
    return float(scores.mean()) if len(scores) else float("nan")
