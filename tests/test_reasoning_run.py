"""A reasoning model end to end through `medprobe run` against the loopback server: chains in
`reasoning_content` and inline, chains cut by max_tokens (finish_reason "length"), request-body fields
from -B / --extra-body, and the reasoning figures in results.json, summary.md and the trust card."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from openai_server import Reply
from typer.testing import CliRunner

from medprobe.cli import app

IMAGES = Path(__file__).resolve().parents[1] / "src/medprobe/data/vqa_rad_demo/images"
N, CUT = 20, 4  # questions; the first CUT think past --max-tokens
LONG = " ".join(["hmm, yes or no?"] * 40)  # 160 tokens of chain: more than --max-tokens 64
SHORT = "The image shows no mass? It does show one. Option B? No: yes."


def _cases(folder: Path) -> Path:
    name = sorted(p.name for p in IMAGES.glob("*.jpg"))[0]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "images" / name).write_bytes((IMAGES / name).read_bytes())
    path = folder / "cases.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "image": f"images/{name}", "question": f"Is there a mass? (q{i})",
                                        "answer": "yes", "answer_type": "closed"}) + "\n" for i in range(N)))  # fmt: skip
    return path


def _reply(rec) -> Reply:
    i = int(re.search(r"\(q(\d+)\)", rec.question).group(1))
    if i < CUT:
        return Reply("\n\nyes", reasoning=LONG)  # the server cuts the chain: content null, finish_reason "length"
    if i % 2:
        return Reply(f"<think>{SHORT}</think>\n\nyes")  # inline chain (no server reasoning parser)
    return Reply("\n\nyes", reasoning=SHORT)


def _records(run: Path) -> dict[str, dict]:
    db = sqlite3.connect(run / "records.sqlite")
    plan = dict(db.execute("SELECT sample_id, key FROM plan WHERE turn = 0"))
    gens = {k: json.loads(b) for k, b in db.execute("SELECT key, body FROM generations")}
    return {sid: gens[key] for sid, key in plan.items()}


def test_reasoning_run_end_to_end(tmp_path, openai_server):
    openai_server.set_script(_reply)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", str(_cases(tmp_path)), "--model", "openai/thinker", "--base-url", openai_server.base_url,
        "--max-tokens", "64", "--out", str(out), "--extra-body", '{"top_k": 20}',
        "-B", "chat_template_kwargs.enable_thinking=true", "-B", "reasoning_effort=high"])  # fmt: skip
    assert result.exit_code == 0, result.output  # an answer cut inside its chain is invalid, not an error
    # the fields reach the server, the manifest and the request key
    body = openai_server.requests[0].body
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert (body["top_k"], body["reasoning_effort"]) == (20, "high")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generation"]["extra_body"] == {"top_k": 20, "chat_template_kwargs": {"enable_thinking": True},
                                                    "reasoning_effort": "high"}  # fmt: skip
    # the chain is stored apart, the text as the server sent it
    recs = _records(out)
    assert recs["q0"]["finish_reason"] == "length" and recs["q0"]["text"] == "" and recs["q0"]["reasoning"]
    assert recs["q4"]["reasoning"] == SHORT and recs["q4"]["text"] == "\n\nyes"
    assert recs["q5"]["text"].startswith("<think>") and recs["q5"]["reasoning"] is None
    # scored on the answer part: the chains' "no" and "B" never count; the cut ones are invalid
    results = json.loads((out / "results.json").read_text())
    strict = next(p for p in results["presets"] if p["preset"] == "strict")
    overall = next(m for m in strict["metrics"] if m["subset"] == "overall")
    assert (overall["correct"], overall["wrong"], overall["invalid"]) == (N - CUT, 0, CUT)
    medevalkit = next(p for p in results["presets"] if p["preset"] == "medevalkit")
    assert next(m for m in medevalkit["metrics"] if m["subset"] == "overall")["correct"] == N - CUT
    section = results["reasoning"]
    assert (section["n"], section["with_chain"], section["cut_off"]) == (N, N, CUT)
    assert section["unit"] == "tokens" and section["max_tokens"] == 64
    assert section["suggested_max_tokens"] > 64 and section["suggested_max_tokens"] % 256 == 0
    assert [q["n"] for q in section["by_quartile"]] == [5, 5, 5, 5]
    assert section["by_quartile"][-1]["invalid"] == CUT  # the longest chains are the cut ones
    summary = (out / "summary.md").read_text()
    assert f"{CUT} of {N} answers (20.0%) are unfinished_reasoning" in summary
    assert f"Raise --max-tokens to about {section['suggested_max_tokens']}" in summary
    assert "## reasoning" in summary and "| quartile |" in summary
    assert "unfinished_reasoning" in result.output  # the terminal header says it too
    card = CliRunner().invoke(app, ["card", str(out), "--out", str(tmp_path / "card")])
    assert card.exit_code == 0, card.output
    figures = {f["key"]: f for f in json.loads((tmp_path / "card" / "card.json").read_text())["models"][0]["figures"]}
    assert figures["reasoning_share"]["value"] == 1.0 and figures["reasoning_cut_off"]["value"] == CUT / N
    assert figures["think_gain"]["note"] == "not run: add --probe think"


def test_bad_extra_body_is_refused_before_any_request(tmp_path, openai_server):
    for args, message in ((["--extra-body", "{top_k: 20}"], "--extra-body is not JSON"),
                          (["--extra-body", "[1]"], "must be a JSON object"),
                          (["-B", "top_k"], "-B expects KEY=VALUE")):  # fmt: skip
        result = CliRunner().invoke(app, ["run", str(_cases(tmp_path)), "--model", "openai/thinker", "--base-url",
                                          openai_server.base_url, "--out", str(tmp_path / "bad"), *args])  # fmt: skip
        assert result.exit_code == 2 and message in result.output, result.output
    assert openai_server.requests == []
