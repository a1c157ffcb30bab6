"""`--ray-address` (no Ray needed): it becomes the ray backend's `ray_address` option, a transport setting
that stays out of the run identity, and it is refused for other backends."""

from __future__ import annotations

from typer.testing import CliRunner

from medprobe.backends.options import answer_options
from medprobe.cli import _Flags, app


def test_ray_address_is_the_ray_backends_option_and_not_part_of_the_identity():
    spec = _Flags(model="ray/hf/some/model", ray_address="10.0.0.1:6379", backend_option=["actors=4"]).spec("vqa-rad-demo")
    assert spec.backend.options["ray_address"] == "10.0.0.1:6379"
    assert "ray_address" not in answer_options(spec.backend.options)  # joining another cluster resumes the same run


def test_ray_address_is_refused_for_other_backends(tmp_path):
    result = CliRunner().invoke(app, ["run", "vqa-rad-demo", "--model", "baseline/random", "--ray-address", "auto",
                                      "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 2 and "--ray-address is for Ray backends" in result.output
    assert not (tmp_path / "run").exists()
