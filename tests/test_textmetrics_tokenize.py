"""The tokenisers: pycocoevalcap's PTB pipeline redone in Python (checked against the Java tokenizer when it
can run), R2Gen's report cleaner and CXR-Report-Metric's prep_reports."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from medprobe.textmetrics import prep_tokens, r2gen_clean, tokens

#: report sentences with the cases CoreNLP treats specially (clitics, abbreviations, numbers, brackets, ___)
CORPUS = [
    "Findings: The heart's size is normal. No left-sided effusion (2.5 cm), don't e.g. T/L spine; 1,200 mL 'quoted' 3% 10:30",
    'Heart size normal [stable] {x} & y * z # 5 $ @ "q" -- ... ; ? !',
    "IMPRESSION: 1. No acute process. 2. Dr. Smith notified at 10:30 a.m. XXXX.",
    "Mild cardiomegaly.No effusion,no pneumothorax. Right-sided PICC ends at the cavoatrial junction.",
    "A/P and lateral views; T11-T12 (stable) > 1 cm < 2 cm = ok + 5",
    "Compared to prior study from ___, there is interval increase in the right pleural effusion.",
    "No focal consolidation, pleural effusion, or pneumothorax.  Cardiomediastinal silhouette is within normal limits!",
    "5mm nodule in the RUL?  Follow-up CT recommended in 3-6 months.",
    "Patient's ET tube terminates 4 cm above the carina; NG tube courses below the diaphragm.",
    "Lungs: clear. Heart: normal. Bones: degenerative changes of the thoracic spine...",
    "There isn't any acute abnormality; it's unchanged vs. prior.",
    "Low lung volumes. Bibasilar opacities, likely atelectasis; infection not excluded.",
]


@pytest.mark.parametrize(("text", "expected"), [
    ("The heart is NORMAL.", "the heart is normal"),
    ("No effusion, no pneumothorax.", "no effusion no pneumothorax"),
    ("Left-sided 2.5 cm nodule (stable).", "left-sided 2.5 cm nodule -lrb- stable -rrb-"),  # library quirk
    ("The patient's tube doesn't move.", "the patient 's tube does n't move"),
    ("Dr. Smith, e.g. at 10:30 a.m.", "dr. smith e.g. at 10:30 a.m."),
    ("cardiomegaly.No effusion", "cardiomegaly.no effusion"),
    ("", ""),
    ("  \n ", ""),
])
def test_ptb_tokens(text, expected):
    assert " ".join(tokens(text)) == expected


@pytest.mark.skipif(importlib.util.find_spec("pycocoevalcap") is None or shutil.which("java") is None,
                    reason="the Java PTBTokenizer needs pycocoevalcap and java")
def test_ptb_tokens_match_the_java_tokenizer():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    java = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(CORPUS)})
    assert [" ".join(tokens(c)) for c in CORPUS] == [java[i][0] for i in range(len(CORPUS))]


def test_r2gen_clean():
    # numbered lists lose their numbers, punctuation goes, sentences are joined by " . ", all lower case
    assert r2gen_clean("1. The heart is normal.. 2. No effusion; lungs clear/ok.") == \
        "the heart is normal . no effusion lungs clearok ."
    assert r2gen_clean("Heart size (normal): stable? Yes!", "mimic_cxr") == "heart size normal stable yes ."
    assert r2gen_clean("") == " ."  # R2Gen keeps the empty sentence


def test_prep_tokens_keep_commas_on_words():
    assert prep_tokens("The heart, is normal. No effusion") == ["the", "heart,", "is", "normal", ".", "no", "effusion"]
