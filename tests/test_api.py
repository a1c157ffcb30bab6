"""The public Python API: `import medprobe` stays light, the names in `__all__` resolve, and the README's
example runs as written (extracted from README.md and executed on the offline demo)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import medprobe

README = Path(__file__).resolve().parents[1] / "README.md"
#: modules `import medprobe` must not load (each costs start-up time; measured with -X importtime)
HEAVY = ("numpy", "scipy", "pydantic", "aiohttp", "matplotlib", "pyarrow", "datasets", "rich", "typer", "jinja2", "PIL")


def test_import_medprobe_loads_nothing_heavy():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import medprobe"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    loaded = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "medprobe" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"import medprobe loads {heavy}"
    assert not [m for m in loaded if m.startswith("medprobe.")]  # every name is loaded on first use


def test_public_names_resolve():
    assert set(medprobe.__all__) >= {"run", "score", "load_run", "report", "Run", "__version__"}
    for name in medprobe.__all__:
        assert getattr(medprobe, name) is not None
    assert set(medprobe.__all__) <= set(dir(medprobe))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        medprobe.nope  # noqa: B018


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_readme_example(), str(README), "exec"), namespace)  # noqa: S102
    run = namespace["run"]
    assert isinstance(run, medprobe.Run) and run.manifest.status == "complete"
    assert run.results.headline == run.results.preset("strict").get("overall")
    assert run.results.headline.interval.startswith("cluster bootstrap by image")
    assert namespace["per_question"].headline.interval.startswith("bootstrap by question")
    assert len(namespace["answered"]) == run.results.counts.answered == 15
    assert Path(namespace["index"]).is_file()
    assert "complete accuracy 40.0 (95% CI" in capsys.readouterr().out
    # `medprobe.report` stays the function after the modules behind it were imported
    assert callable(medprobe.report) and callable(medprobe.run) and callable(medprobe.score)
