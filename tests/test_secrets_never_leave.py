"""A planted API key never appears in anything a run writes or prints, on every failure path:
errors recorded after retries (500/429 echoing the key), 400/401 bodies quoting it, garbage bodies
holding it, connection errors, a key typed into --base-url, plus the manifest, results, summary,
SQLite (WAL included) and stdout/stderr. Keys with no recognisable prefix are echoed back by the
loopback server in every encoding (`openai_server.echoes`), in replies, reasoning, logprobs and
error bodies, and looked for by a detector written apart from `medprobe.secrets`."""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import sqlite3
import string
import subprocess
import sys
from urllib.parse import quote, unquote, unquote_plus

import pytest
from openai_server import Fault, Reply, echo_key, echoes, serve_subprocess
from test_backend_openai import request
from test_e2e_cli import make_cases
from typer.testing import CliRunner

from medprobe.backends import BackendConfig, PermanentError, TransientError
from medprobe.backends.openai_compat import OpenAIBackend
from medprobe.cli import app
from medprobe.secrets import CUT_PREFIX, MASK, Scrubber

SECRET = "sk-planted-SECRET-0123456789abcdef"
NEEDLES = (SECRET.encode(), b"planted-SECRET", b"0123456789abcdef")


def run(*args: str, codes: tuple[int, ...] = (0,)):
    """The CLI's output; `codes`: the exit codes README's table allows for this run (3: partial, 2: preflight)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code in codes, result.output
    return result.output


def assert_clean(folder, *texts: str) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not folder.exists() or any(p.name == "records.sqlite" for p in files)
    for blob, where in [*((p.read_bytes(), str(p)) for p in files), *((t.encode(), "output") for t in texts)]:
        for needle in NEEDLES:
            assert needle not in blob, f"{needle!r} in {where}"


def errors(out) -> dict[str, str]:
    db = sqlite3.connect(out / "records.sqlite")
    plan = dict(db.execute("SELECT sample_id, key FROM plan WHERE turn = 0"))
    gens = {k: json.loads(b) for k, b in db.execute("SELECT key, body FROM generations")}
    return {sid: (gens.get(key) or {}).get("error") or "" for sid, key in plan.items()}


def test_key_never_written_on_any_failure_path(tmp_path, openai_server, monkeypatch):
    monkeypatch.setenv("MY_KEY", SECRET)
    openai_server.api_key = SECRET
    cases = make_cases(tmp_path, 7)
    openai_server.set_faults(
        Fault(500, match="q0)", message=f"upstream failed for key {SECRET}"),  # retried, then recorded
        Fault(429, match="q1)", message=f"rate limit for {SECRET}", retry_after=0),
        Fault(400, match="q2)", message=f"bad header: Authorization: Bearer {SECRET}"),
        Fault("non_json", match="q3)", message=f"<html>proxy saw {SECRET}</html>"),
        Fault("no_choices", match="q4)", message=f"echo {SECRET}"),
        Fault(422, match="q5)", message=f"{SECRET[:20]}...{SECRET[20:]}"),
    )  # fmt: skip
    out = tmp_path / "faults"
    base = ["--model", "openai/tiny", "--api-key-env", "MY_KEY", "--retries", "1", "--timeout", "5"]
    text = run("run", str(cases), *base, "--base-url", openai_server.base_url, "--out", str(out), codes=(3,))
    errs = errors(out)
    assert all(errs[f"q{i}"] for i in range(6)) and not errs["q6"]
    assert "gave up after 2 attempts" in errs["q0"] and "***" in errs["q0"]

    # 401: the server echoes the (wrong) key it was sent, like hosted APIs do; first at preflight
    # (nothing written), then on chat requests from a server with no /models to ask
    monkeypatch.setenv("MY_KEY", SECRET + "-wrong")
    openai_server.set_faults()
    out401 = tmp_path / "unauthorized"
    text401 = run("run", str(cases), *base, "--base-url", openai_server.base_url, "--out", str(out401), codes=(2,))
    assert "401" in text401 and "MY_KEY" in text401
    openai_server.models_status = 404
    out401 = tmp_path / "unauthorized-chat"
    text401 += run("run", str(cases), *base, "--base-url", openai_server.base_url, "--out", str(out401),
                   codes=(2, 3, 4))  # fmt: skip
    if (out401 / "records.sqlite").exists():
        assert all("401" in e and "MY_KEY" in e for e in errors(out401).values() if e)

    # connection refused, with a key typed into the URL's query
    monkeypatch.setenv("MY_KEY", SECRET)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/v1?api_key={SECRET}"
    outconn = tmp_path / "refused"
    textconn = run("run", str(cases), *base, "--base-url", url, "--out", str(outconn), codes=(2,))
    assert f"cannot connect to http://127.0.0.1:{port}/v1/models" in textconn  # preflight: nothing written
    for folder in (out, out401, outconn):
        assert_clean(folder, text, text401, textconn)
    score = CliRunner().invoke(app, ["score", str(out), "--json"])
    assert_clean(out, score.output)
    assert not any(s in text + text401 + textconn + score.output for s in (SECRET, SECRET[:20]))


@pytest.mark.slow
def test_key_never_printed_by_a_subprocess(tmp_path):
    cases = make_cases(tmp_path, 4)
    out = tmp_path / "run"
    env = {**__import__("os").environ, "MY_KEY": SECRET + "-wrong"}
    with serve_subprocess(api_key=SECRET, faults=[{"kind": 500, "match": "q0)", "message": SECRET}]) as url:
        proc = subprocess.run([sys.executable, "-c", "from medprobe.cli import main; main()", "run", str(cases),
                               "--model", "openai/tiny", "--base-url", url, "--api-key-env", "MY_KEY",
                               "--retries", "1", "--out", str(out)],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode in (2, 3, 4), proc.stderr  # preflight refuses the key, or the breaker stops the run
    assert_clean(out, proc.stdout, proc.stderr)


# ---------------------------------------------------------------- keys with no recognisable prefix, every encoding


def random_key(seed: int, n: int = 40) -> str:
    """A key nothing could recognise by shape: letters, digits and the symbols base64 and URLs treat specially."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits + "/+=") for _ in range(n))


KEYS = [random_key(seed) for seed in range(3)]


def _b64_cores(key: str) -> list[str]:
    """What only the key determines in a base64 string holding it at offset 0, 1 or 2 of a group:
    the characters two encodings with different surroundings agree on."""
    raw, cores = key.encode(), []
    for offset in range(3):
        a = base64.b64encode(b"\0" * offset + raw + b"\0\0").decode()
        b = base64.b64encode(b"\xff" * offset + raw + b"\xff\xff").decode()
        core = max("".join(x if x == y else "\0" for x, y in zip(a, b)).split("\0"), key=len)
        cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


def leaks(blob: str, key: str) -> list[str]:
    """Pieces of `key` (any 12 characters in a row, or a base64 core) found in `blob` read plainly,
    URL-decoded, JSON-unescaped or with whitespace removed: a detector written apart from the scrubber."""
    unjson = re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), blob)
    unjson = re.sub(r"\\+([^nrtu])", r"\1", unjson)
    views = [blob, unquote(blob), unquote(unquote(blob)), unquote_plus(blob), unjson,
             re.sub(r"(?:\s|\\+[nrt])+", "", blob), re.sub(r"(?:\s|\\+[nrt])+", "", unjson)]  # fmt: skip
    needles = [key[i : i + 12] for i in range(len(key) - 11)] + _b64_cores(key)
    return sorted({n for view in views for n in needles if n in view})


@pytest.mark.parametrize("key", KEYS)
def test_scrubber_removes_every_encoding(key):
    scrub = Scrubber(key)
    for form in echoes(key).split(" | "):
        assert leaks(form, key), f"the detector misses {form!r}"  # the test can see the form
        out = scrub(f"prefix {form} suffix")
        assert not leaks(out, key) and out.startswith("prefix ") and out.endswith(" suffix"), (form, out)
    mixed = json.dumps({"error": {"message": echoes(key), "url": f"http://h/v1?key={quote(key, safe='')}"}})
    assert not leaks(scrub(mixed), key) and not leaks(scrub(mixed.replace("/", "\\/")), key)


@pytest.mark.parametrize("key", KEYS)
def test_scrubber_removes_fragments_and_what_a_cut_leaves(key):
    scrub = Scrubber(key)
    for text in (key[:-1] + " " + key, f"cut by the server: {key[:15]}", f"{key[10:30]} is all it kept"):
        assert not leaks(scrub(text), key), text
    text = "x" * 190 + key + " and more"
    for limit in range(190, 190 + len(key) + 1):  # every cut through the key
        cut = scrub.cut(text, limit)
        assert key[:CUT_PREFIX] not in cut.removeprefix("x" * 190) and len(cut) <= limit + len(MASK)
    assert scrub.cut("y" * 50 + key[:6] + "zzz", 56) == "y" * 50 + MASK  # a key prefix the cut leaves at its end
    assert scrub.cut("short", 200) == "short"


def test_scrubber_leaves_ordinary_text_alone():
    scrub = Scrubber(KEYS[0], "ab")  # a 2-character secret is scrubbed verbatim only
    text = "Yes. The left lung shows a 3 cm mass; bearer of the report: Dr Ab. " * 20
    assert scrub(text) == text.replace("ab", MASK)
    assert Scrubber(KEYS[0])(text) == text and Scrubber(None, "")(text) == text
    assert Scrubber(KEYS[0]).tokens(["Yes", " it", " is"]) == ["Yes", " it", " is"]


def test_exact_key_scrub():
    # the simplest case, kept on its own: the key as sent, inside a sentence and at the very edges
    key = KEYS[1]
    scrub = Scrubber(key)
    assert scrub(f"key={key}.") == f"key={MASK}." and scrub(key) == MASK and scrub(key + key) == MASK
    assert Scrubber(SECRET)(f"Bearer {SECRET}") == f"Bearer {MASK}"


async def test_backend_scrubs_echoes_in_replies_reasoning_logprobs_and_errors(openai_server, monkeypatch):
    key = KEYS[2]
    monkeypatch.setenv("ECHO_KEY", key)
    backend = OpenAIBackend(BackendConfig(provider="openai", model="m", base_urls=(openai_server.base_url,),
                                          api_key_env="ECHO_KEY", timeout_s=5))  # fmt: skip
    texts: list[str] = []
    try:
        openai_server.set_script(lambda rec: Reply(echo_key(rec), reasoning=echo_key(rec)))
        gen = (await backend.generate([request("q", max_tokens=4000, logprobs=True, top_logprobs=2)]))[0]
        texts += [gen.model_dump_json()]
        assert gen.text.startswith("You sent: ") and gen.reasoning.startswith("You sent: ")
        openai_server.set_script(lambda rec: Reply("A", logprobs=[(key, -0.1, [(key, -0.1), (key[:20], -2.0)]),
                                                                 (key[:9], -0.2, []), (key[9:], -0.2, [])]))
        gen = (await backend.generate([request("q", logprobs=True, top_logprobs=2)]))[0]
        texts += [gen.model_dump_json()]
        for fault in (Fault(500, message="upstream {echo}"), Fault(401, message="Incorrect key {echo}"),
                      Fault("non_json", message="<html>{echo}</html>"), Fault("no_choices", message="{echo}"),
                      Fault(400, message="x" * 150 + "{echo}")):  # fmt: skip
            openai_server.set_faults(fault)
            with pytest.raises((TransientError, PermanentError)) as exc:
                await backend.generate([request("q")])
            texts += [str(exc.value), repr(exc.value)]
    finally:
        await backend.aclose()
    assert openai_server.requests[0].auth == f"Bearer {key}"
    assert not [(t[:80], leaks(t, key)) for t in texts if leaks(t, key)]


def test_echoed_key_never_reaches_the_run_folder_or_output(tmp_path, openai_server, monkeypatch):
    key = KEYS[0]
    monkeypatch.setenv("ECHO_KEY", key)
    cases = make_cases(tmp_path, 6)
    openai_server.set_script(lambda rec: Reply(echo_key(rec), reasoning=echo_key(rec)) if "q5)" in rec.question
                             else echo_key(rec))  # fmt: skip
    openai_server.set_faults(
        Fault(500, match="q0)", message="upstream failed: {echo}"), Fault(400, match="q1)", message="bad: {echo}"),
        Fault("non_json", match="q2)", message="<html>{echo}</html>"),
        Fault("no_choices", match="q3)", message="{echo}"),
    )  # fmt: skip
    out = tmp_path / "echo"
    printed = run("run", str(cases), "--model", "openai/tiny", "--api-key-env", "ECHO_KEY", "--retries", "1",
                  "--timeout", "5", "--base-url", openai_server.base_url, "--out", str(out), codes=(3,))  # fmt: skip
    printed += CliRunner().invoke(app, ["score", str(out), "--json"]).output
    printed += CliRunner().invoke(app, ["card", str(out)]).output
    db = sqlite3.connect(out / "records.sqlite")
    bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM generations")]
    db.close()
    assert sum(1 for b in bodies if (b.get("text") or "").startswith("You sent: ")) == 2  # answered, scrubbed
    assert any(b.get("reasoning") for b in bodies)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"records.sqlite", "manifest.json"} <= {p.name for p in files}
    found = {str(p.relative_to(out)): leaks(p.read_bytes().decode("latin-1"), key) for p in files}
    found |= {"output": leaks(printed, key)} | {f"record {i}": leaks(json.dumps(b), key) for i, b in enumerate(bodies)}
    assert not {where: what for where, what in found.items() if what}
