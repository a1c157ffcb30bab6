"""The report prompt: chosen by answer type, with the study's context line, outside the hash of VQA templates."""

from __future__ import annotations

from medprobe.prompts import BUILTIN, REPORT_PROMPT, PromptTemplate, first_turn
from medprobe.types import AnswerType, ImageRef, Sample

# the hashes every built-in template had before templates got a `report` field (run identities depend on them)
HASHES = {"default": "4e808092d4751abc", "medxpertqa-cot": "604b6d5156b4de03", "mmmu": "66ff9410a4bb0b76",
          "vlmevalkit-mcq": "8847552541deb5b8", "medframeqa": "11f53b5604b488be",
          "verbal-confidence": "dedede1300fea564", "mediconfusion-mc": "991f3169fdc8de13",
          "mediconfusion-free": "03169d198f05e0ed", "probmed": "090c7d1d0402bc5e", "smmile": "9e0e9e62e6c09cab"}


def study(question: str = "", section: str = "findings") -> Sample:
    return Sample(id="s1", benchmark="t", question=question, answer="Clear lungs.", answer_type=AnswerType.REPORT,
                  images=(ImageRef(path="0.png", name="frontal"), ImageRef(path="1.png", name="lateral")),
                  metadata={"section": section, "views": "frontal,lateral"})


def test_vqa_templates_keep_their_hash():
    assert {k: BUILTIN[k].hash for k in HASHES} == HASHES
    own = PromptTemplate(name="default", report="{question}\nDescribe the {section}.")
    assert own.hash != HASHES["default"]  # a template's own report text is part of its identity


def test_report_prompt_text_is_pinned():
    # REPORT_PROMPT is outside every template hash: editing it would change what report runs send without
    # changing their identity. Give a template its own `report` instead.
    assert REPORT_PROMPT == "{question}\nWrite the {section} section of the radiology report for this chest X-ray."


def test_report_turn_has_the_images_in_order_then_context_then_instruction():
    (user,) = first_turn(BUILTIN["default"], study("Indication: Cough.", "impression"))
    assert [p.image.name for p in user.content[:2]] == ["frontal", "lateral"]
    assert user.content[2].text == ("Indication: Cough.\nWrite the impression section of the radiology report for "
                                    "this chest X-ray.")
    (user,) = first_turn(BUILTIN["default"], study())
    assert user.content[-1].text == "Write the findings section of the radiology report for this chest X-ray."
    (user,) = first_turn(PromptTemplate(name="x", report="Report ({section}): {question}"), study("Indication: Fall."))
    assert user.content[-1].text == "Report (findings): Indication: Fall."
