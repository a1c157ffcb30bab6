"""Record pycocoevalcap 1.2's outputs on the shared case set into tests/fixtures/textmetrics_coco.json.

    pip install pycocoevalcap && python tests/record_textmetrics_coco.py   (METEOR also needs java on PATH)

tests/test_textmetrics_coco.py checks medprobe.textmetrics against the recording everywhere, and against
the live library when it is installed. Inputs are what pycocoevalcap's scorers take: pre-tokenised strings
(the raw quirk cases are fed as they are, to pin the library's own splitting).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from medprobe.textmetrics import tokens

FIXTURE = Path(__file__).parent / "fixtures" / "textmetrics_coco.json"

REPORTS = [
    ("The heart is normal in size. The lungs are clear.", ["The heart size is normal. The lungs are clear."]),
    ("No acute cardiopulmonary process.", ["No acute cardiopulmonary abnormality."]),
    ("Mild cardiomegaly. No pleural effusion or pneumothorax.",
     ["The heart is mildly enlarged. There is no pleural effusion. No pneumothorax."]),
    ("Left lower lobe opacity, likely atelectasis.", ["Right lower lobe consolidation concerning for pneumonia."]),
    ("Normal chest.", [("The cardiomediastinal silhouette is within normal limits. No focal consolidation, "
                        "pleural effusion or pneumothorax. No acute osseous abnormality.")]),
    ("ET tube terminates 4 cm above the carina. NG tube below the diaphragm.",
     ["Endotracheal tube tip 4 cm above the carina. Enteric tube courses below the diaphragm."]),
]

#: name -> (candidates, references): pycocoevalcap inputs, fed as they are
CORPORA: dict[str, tuple[list[str], list[list[str]]]] = {
    "reports_tokenised": ([" ".join(tokens(c)) for c, _ in REPORTS],
                          [[" ".join(tokens(r)) for r in rs] for _, rs in REPORTS]),
    "empty_candidate": (["", "the heart is normal"], [["the heart is normal"], ["the heart is normal"]]),
    "shorter_than_every_reference": (["heart normal", "lungs clear"],
                                     [["the heart is normal in size", "heart size is normal"],
                                      ["the lungs are clear bilaterally"]]),
    "repeated_ngrams": (["the the the the the the", "no no effusion effusion effusion"],
                        [["the heart is the normal size"], ["no effusion"]]),
    "punctuation_raw": (["heart normal. lungs clear.", "no effusion , no pneumothorax ."],
                        [["heart normal . lungs clear .", "heart is normal."], ["no effusion, no pneumothorax."]]),
    "case_raw": (["The Heart Is Normal", "NO EFFUSION"], [["the heart is normal"], ["no effusion"]]),
    "closest_length_tie": (["a b c d e f"], [["a b c d", "a b c d e f g h"]]),
    "double_spaces_raw": (["heart  is normal", "lungs clear "], [["heart is normal"], ["lungs  clear"]]),
    # one-word candidates (CIDEr's length counts bigrams: 0 for one word)
    "one_word_candidate": (["effusion", "the heart is normal", "no"], [["no effusion seen"], ["the heart is normal"],
                                                                      ["no acute process"]]),
    "single_study": (["no acute findings"], [["no acute cardiopulmonary findings"]]),
}


def record() -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    out = {}
    for name, (cands, refs) in CORPORA.items():
        gts = {i: r for i, r in enumerate(refs)}
        res = {i: [c] for i, c in enumerate(cands)}
        bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
        rouge, rouge_per = Rouge().compute_score(gts, res)
        entry = {"candidates": cands, "references": refs, "bleu": list(bleu),
                 "bleu_per_study": [list(col) for col in bleu_per],
                 "rougeL": float(rouge), "rougeL_per_study": [float(x) for x in rouge_per]}
        if len(cands) > 1 or name == "single_study":
            cider, cider_per = Cider().compute_score(gts, res)
            entry |= {"cider": float(cider), "cider_per_study": [float(x) for x in cider_per]}
        if shutil.which("java"):
            from pycocoevalcap.meteor.meteor import Meteor

            jar = Meteor()
            meteor, meteor_per = jar.compute_score(gts, res)
            # the SCORE lines compute_score sends before EVAL: medprobe sums them itself (textmetrics.meteor)
            stats = [[float(x) for x in jar._stat(c, r).split()] for c, r in zip(cands, refs)]
            entry |= {"meteor": float(meteor), "meteor_per_study": [float(x) for x in meteor_per],
                      "meteor_stats": stats}
        out[name] = entry
    return out


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {FIXTURE}")
