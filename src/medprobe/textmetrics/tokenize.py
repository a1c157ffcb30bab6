"""Tokenisers for lexical report metrics. The scorers (medprobe.textmetrics.coco) take space-joined tokens.

Which tokeniser a number used matters as much as the metric: the same report pair scores differently under
each. Three pipelines are in use, and each preset names the one it applies:

- `tokens` (the default, "ptb"): pycocoevalcap's own pipeline, `PTBTokenizer` (Stanford CoreNLP 3.4.1,
  `-preserveLines -lowerCase`) then dropping its PUNCTUATIONS tokens, redone in Python because the original
  needs Java. Lower case; numbers ("2.5", "1,200", "10:30"), hyphenated and slashed words ("left-sided",
  "t/l") and dotted abbreviations ("e.g.", "a.m.", "dr.") stay whole; "%", "&", "<", "=" ... are tokens;
  clitics split ("don't" -> "do n't", "heart's" -> "heart 's"); a period with no space after it stays
  inside the word ("cardiomegaly.no"), as CoreNLP leaves it. Quirk kept: the library's list spells
  brackets "-LRB-" but the lower-cased output is "-lrb-", so brackets count as words. tests compare it
  with the Java tokenizer on a report corpus when java and pycocoevalcap are installed.
- `r2gen_tokens(text, dataset)`: R2Gen's `Tokenizer.clean_report_iu_xray` / `clean_report_mimic_cxr`
  (github.com/cuhksz-nlp/R2Gen, modules/tokenizers.py), which R2Gen-lineage papers score with: lower case,
  punctuation stripped, sentences joined by " . ".
- `prep_tokens`: CXR-Report-Metric's `prep_reports` (github.com/rajpurkarlab/CXR-Report-Metric,
  CXRMetric/run_eval.py), also MedEvalKit's `cal_report_metrics.py`: lower case, "." -> " .", split on
  single spaces, drop empty strings (commas stay on their words).
"""

from __future__ import annotations

import re

# pycocoevalcap tokenizer/ptbtokenizer.py drops these tokens after CoreNLP. Its list spells brackets
# "-LRB-" while `-lowerCase` emits "-lrb-", so brackets survive as words: kept here too.
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
                          "--", "...", ";"])
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
#: abbreviations CoreNLP keeps the period on (besides dotted acronyms such as "e.g.", "a.m.")
_ABBREVIATIONS = frozenset(["dr", "mr", "mrs", "ms", "prof", "jr", "sr", "st", "vs", "etc"])
_CLITIC = re.compile(r"(n't|'s|'re|'ve|'ll|'d|'m)\b")
_TOKEN = re.compile(r"n't\b|'(?:s|re|ve|ll|d|m)\b"
                    r"|[^\W_]+(?:(?:[-./&]|(?<=\d)[:,](?=\d))[^\W_]+)*\.?"
                    r"|\.\.\.|--|``|''|_+|\S")


def _ptb(token: str) -> list[str]:
    if len(token) > 1 and token.endswith(".") and token[-2] != ".":
        stem = token[:-1]
        if "." in stem or stem in _ABBREVIATIONS:
            return [token]
        return [stem]  # the sentence period: a token of its own, then dropped
    return [_BRACKETS.get(token, token)]


def tokens(text: str) -> list[str]:
    """The default tokeniser: pycocoevalcap's PTBTokenizer -lowerCase with its PUNCTUATIONS dropped."""
    text = text.replace("\u2019", "'").replace("\n", " ").lower()
    text = _CLITIC.sub(r" \1", text)
    return [t for raw in _TOKEN.findall(text) for t in _ptb(raw) if t not in PUNCTUATIONS and t != '"']


# R2Gen modules/tokenizers.py. Note the character class: ":-\[" is a *range* (":" to "["), so ; < = > ? @
# and the upper-case letters go too; they were lower-cased first, so only ; < = > ? @ matter.
_R2GEN_SENT = re.compile(r"[.,?;*!%^&_+():-\[\]{}]")


def _r2gen_sentences(text: str, dataset: str) -> list[str]:
    if dataset == "mimic_cxr":
        t = text.replace("\n", " ")
        for _ in range(7):
            t = t.replace("__", "_")
        for _ in range(6):
            t = t.replace("  ", " ")
        for _ in range(8):
            t = t.replace("..", ".")
    else:
        t = text.replace("..", ".").replace("..", ".").replace("..", ".")
    t = t.replace("1. ", "")
    for k in "2345":
        t = t.replace(f". {k}. ", ". ")
    for k in "2345":
        t = t.replace(f" {k}. ", ". ")
    return t.strip().lower().split(". ")


def r2gen_clean(text: str, dataset: str = "iu_xray") -> str:
    """R2Gen's `clean_report_iu_xray` (dataset "iu_xray") or `clean_report_mimic_cxr` (any other value)."""

    def clean(sent: str) -> str:
        sent = sent.replace('"', "").replace("/", "").replace("\\", "").replace("'", "").strip().lower()
        return _R2GEN_SENT.sub("", sent)

    # R2Gen filters `sent_cleaner(sent) != []`, always true for a string: empty sentences are kept
    return " . ".join(clean(s) for s in _r2gen_sentences(text, dataset)) + " ."


def r2gen_tokens(text: str, dataset: str = "iu_xray") -> list[str]:
    """`r2gen_clean` split on whitespace."""
    return r2gen_clean(text, dataset).split()


def prep_tokens(text: str) -> list[str]:
    """CXR-Report-Metric `prep_reports` (and MedEvalKit): lower, "." -> " .", split(" "), drop ""."""
    return [t for t in str(text).lower().replace(".", " .").split(" ") if t != ""]


TOKENIZERS = {"ptb": tokens, "r2gen": r2gen_tokens, "prep": prep_tokens}
