"""SMMILE and SMMILE++ (Rieff et al., 2025; eth-medical-ai-lab/smmile): multimodal medical
in-context learning. 111 problems (517 rows) on the gated hub dataset `smmile/SMMILE`; SMMILE++
(`smmile/SMMILE-plusplus`) = 1,038 problems that permute the in-context examples.

A problem's rows (`problem_id`, `order`, `question`, `answer`, `image`) are sorted by `order`
(utils.py `load_data`); the last row is the query, the earlier ones are in-context examples, sent
as earlier user turns (image + question) each followed by an assistant turn holding its answer.
(inference_openai.py sends those answers with the "system" role; the open-model scripts use the
model's assistant turn, which medprobe follows.) The split picks the view:

* `icl` (default) / `0-shot`: open answers, scored by `smmile-em` (or `medprobe judge`);
  0-shot sends only the query row.
* `icl-mcqa` / `0-shot-mcqa`: options = the problem's unique answers in row order
  (`prepare_mcqa_options`), shuffled with a generator seeded by the problem id (the official
  scripts use Python's global `random`, so their exact permutation is not reproducible);
  scored by `smmile-mcqa`.

Published result files: `--data result_<model>_<mode>[_open|_mcqa].csv` (columns problem_id,
final_question, true_answer, generated_answer, full_response; MCQA files add correct_option,
selected_option, is_correct) loads the questions and golds from the file itself, so
`medprobe import` re-scores them without the gated dataset.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded, Provenance
from medprobe.benchmarks._formats import LoadError, RowError, file_sha256, read_csv, read_hf, to_image_ref
from medprobe.benchmarks.custom import collect, finish, limit_filter, table_provenance, pick_split
from medprobe.prompts import LETTERS
from medprobe.types import AnswerType, Message, Part, Sample

HUBS = {"smmile": "smmile/SMMILE", "smmile-plus": "smmile/SMMILE-plusplus"}
SPLITS = ("icl", "0-shot", "icl-mcqa", "0-shot-mcqa")


def _load(name: str, options: LoadOptions) -> Loaded:
    split = pick_split(options.split, SPLITS, "icl")
    source = options.data or HUBS[name]
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        return _from_result_csv(name, path, options)
    table = read_hf(source, "train")  # the hub datasets have one split, "train", holding every problem
    problems: dict[str, list[dict]] = defaultdict(list)
    errors = []
    for row in table.rows:
        if row.data is None:
            errors.append(f"{row.where}: {row.error}")
        else:
            problems[str(row.data["problem_id"])].append(row.data)
    zero_shot, mcqa = split.startswith("0-shot"), split.endswith("mcqa")
    root = Path(options.images_dir).expanduser() if options.images_dir else None

    def convert(rows: list[dict]) -> Sample:
        rows = sorted(rows, key=lambda r: int(r["order"]))
        query, examples = rows[-1], ([] if zero_shot else rows[:-1])
        image = to_image_ref(query.get("image"), root)
        if image is None:  # utils.py `process_data` drops problems with a missing image
            raise RowError(f"problem {query['problem_id']}: the query image is missing")
        history: list[Message] = []
        for ex in examples:
            ex_image = to_image_ref(ex.get("image"), root)
            if ex_image is None:
                raise RowError(f"problem {query['problem_id']}: an in-context image is missing")
            history += [Message(role="user", content=(Part(type="image", image=ex_image),
                                                      Part(type="text", text=str(ex["question"])))),
                        Message(role="assistant", content=(Part(type="text", text=str(ex["answer"])),))]
        meta = {"problem_id": str(query["problem_id"]), "n_examples": len(examples), "language": "en",
                "mode": "0-shot" if zero_shot else "ICL"}
        sample = dict(id=str(query["problem_id"]), benchmark=name, split=split, question=str(query["question"]),
                      images=(image,), history=tuple(history), metadata=meta)
        if not mcqa:
            return Sample(**sample, answer=str(query["answer"]), answer_type=AnswerType.OPEN)
        unique = list(dict.fromkeys(str(r["answer"]) for r in rows))  # every row's answer, in row order
        random.Random(f"smmile:{query['problem_id']}").shuffle(unique)
        gold = LETTERS[unique.index(str(query["answer"]))]
        return Sample(**sample, options=tuple(unique), answer=gold, answer_type=AnswerType.MULTIPLE_CHOICE)

    samples, more = _collect(problems, convert, options.limit)
    prov = table_provenance(name, source, table, split, options)
    return finish(samples, errors + more, prov)


def _collect(problems: dict[str, list[dict]], convert, limit: int | None) -> tuple[list[Sample], list[str]]:
    samples, errors = [], []
    for pid, rows in problems.items():
        if limit is not None and len(samples) >= limit:
            break
        try:
            samples.append(convert(rows))
        except (RowError, KeyError, ValueError) as exc:
            errors.append(f"problem {pid}: {exc}")
    return samples, errors


_CSV_COLUMNS = {"problem_id": ("problem_id",), "question": ("final_question", "original_question"),
                "true_answer": ("true_answer", "correct_answer"), "option": ("correct_option", "correct_letter")}


def _from_result_csv(name: str, path: Path, options: LoadOptions) -> Loaded:
    """Samples from a published result CSV: question and gold travel in the file."""
    def convert(row: dict) -> Sample:
        # the published files use two spellings (MedVLM-R1's and llama33textonly's differ)
        get = {k: next((row[a] for a in aliases if a in row), None) for k, aliases in _CSV_COLUMNS.items()}
        if get["problem_id"] is None or get["question"] is None or (get["true_answer"] is None and not get["option"]):
            raise RowError("not a SMMILE result CSV row: needs problem_id, final_question and true_answer "
                           "(or correct_option)")
        mcqa = bool(str(get["option"] or "").strip())
        meta = {"problem_id": get["problem_id"], "true_answer": get["true_answer"], "language": "en"}
        return Sample(id=str(get["problem_id"]), benchmark=name, split="results", question=str(get["question"]),
                      answer=str(get["option"]).strip() if mcqa else str(get["true_answer"]),
                      answer_type=AnswerType.MULTIPLE_CHOICE if mcqa else AnswerType.OPEN,
                      metadata={k: v for k, v in meta.items() if v is not None})

    samples, errors = collect(read_csv(path), convert, options.limit)
    if not samples and errors:
        raise LoadError(f"{path} is not a SMMILE result CSV: {errors[0]}")
    prov = Provenance(benchmark=name, source=str(path), sha256=file_sha256(path), split="results",
                      filters=limit_filter(options))
    return finish(samples, errors, prov)


def load(options: LoadOptions) -> Loaded:
    return _load("smmile", options)


def load_plus(options: LoadOptions) -> Loaded:
    return _load("smmile-plus", options)


_COMMON = dict(splits=SPLITS, default_split="icl", default_preset="smmile-em", prompt="smmile", reads_result_files=True)
SPEC = BenchmarkSpec(name="smmile", load=load, source=HUBS["smmile"], **_COMMON,
                     description="SMMILE: 111 multimodal in-context problems (last row = query); open EM or MCQA")
SPEC_PLUS = BenchmarkSpec(name="smmile-plus", load=load_plus, source=HUBS["smmile-plus"], **_COMMON,
                          description="SMMILE++: 1,038 problems permuting SMMILE's in-context examples")
