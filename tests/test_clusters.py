"""Intervals that respect the data: questions about one image are resampled together.

The coverage test simulates many benchmarks with a known true accuracy where questions about one
image are strongly correlated (each image has its own difficulty), and counts how often each 95%
interval covers the truth: the image (cluster) bootstrap comes close to 95%, the per-question
bootstrap falls far short.
"""

from __future__ import annotations

import numpy as np
import pytest

from medprobe import clusters
from medprobe.compare import paired_bootstrap
from medprobe.results import compute
from medprobe.stats import bootstrap_ci, bootstrap_means
from medprobe.types import AnswerType, Generation, ImageRef, Record, Sample

TRUE_ACCURACY = 0.7


def _clustered_dataset(rng: np.random.Generator, images: int = 40, per_image: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """0/1 correctness: image g's questions are right with probability p_g ~ Beta(0.7, 0.3) (mean 0.7,
    intra-image correlation 1 / (0.7 + 0.3 + 1) = 0.5)."""
    p = rng.beta(0.7, 0.3, images)
    labels = np.repeat(np.arange(images), per_image)
    return (rng.random(images * per_image) < p[labels]).astype(float), labels


def test_cluster_bootstrap_covers_the_true_accuracy_and_the_naive_one_does_not():
    rng = np.random.default_rng(2026)
    covered = {"image": 0, "question": 0}
    widths = {"image": [], "question": []}
    trials = 300
    for t in range(trials):
        values, labels = _clustered_dataset(rng)
        for kind, groups in (("image", labels), ("question", None)):
            low, high = bootstrap_ci(values, t, "acc", clusters=groups)
            covered[kind] += low <= TRUE_ACCURACY <= high
            widths[kind].append(high - low)
    coverage = {k: v / trials for k, v in covered.items()}
    # 40 clusters: the percentile cluster bootstrap is a little short of 95% (its known small-sample bias)
    assert 0.90 <= coverage["image"] <= 0.98, coverage
    assert coverage["question"] < 0.75, coverage
    assert np.mean(widths["image"]) > 1.8 * np.mean(widths["question"])


def test_singleton_clusters_are_the_per_question_bootstrap_and_one_cluster_has_no_interval():
    values = np.array([1.0] * 30 + [0.0] * 20)
    assert bootstrap_ci(values, 0, "x", clusters=np.arange(50)) == bootstrap_ci(values, 0, "x")
    assert np.isnan(bootstrap_ci(values, 0, "x", clusters=np.zeros(50))).all()
    # a resample's mean is the drawn clusters' total over their size (unequal clusters are weighted by size)
    means = bootstrap_means(np.array([1.0, 1.0, 1.0, 0.0]), np.random.default_rng(0), 2000, np.array([0, 0, 0, 1]))
    assert set(np.round(means, 6)) <= {1.0, 0.0, 0.75}


def test_paired_difference_resamples_images_too():
    rng = np.random.default_rng(1)
    a, labels = _clustered_dataset(rng)
    b = np.where(rng.random(len(a)) < 0.15, 1 - a, a)
    per_image = paired_bootstrap(a, b, 0, "d", clusters=labels)
    per_item = paired_bootstrap(a, b, 0, "d")
    assert per_image[1] - per_image[0] > per_item[1] - per_item[0]


def _sample(i: int, image: ImageRef | None, **meta) -> Sample:
    return Sample(id=f"q{i}", benchmark="cases", question=f"q {i}?", answer="yes", answer_type=AnswerType.CLOSED,
                  images=(image,) if image else (), metadata=meta)  # fmt: skip


def test_labels_from_image_path_bytes_or_a_metadata_column():
    a, b = ImageRef(path="a.png", root="/data"), ImageRef(path="b.png", root="/data")
    samples = [_sample(0, a, patient="p1"), _sample(1, a, patient="p2"), _sample(2, b, patient="p1"),
               _sample(3, ImageRef(data=b"x")), _sample(4, ImageRef(data=b"x")), _sample(5, None)]  # fmt: skip
    assert clusters.labels(samples).tolist() == [0, 0, 1, 2, 2, 3]
    assert clusters.labels(samples, "patient").tolist() == [0, 1, 0, 2, 3, 4]  # no value: a cluster of its own
    assert clusters.labels(samples, "none") is None
    with pytest.raises(ValueError, match="--cluster-key site: no sample has a metadata column 'site'.*patient"):
        clusters.labels(samples, "site")
    assert clusters.Resampling.of([_sample(0, None)]).method.startswith("bootstrap by question")


def _records(images: int, per_image: int, rng: np.random.Generator) -> list[Record]:
    values, labels = _clustered_dataset(rng, images, per_image)
    return [Record(sample=_sample(i, ImageRef(path=f"img{g}.png"), modality="CT"),
                   generations=(Generation(text="yes" if v else "no"),))
            for i, (v, g) in enumerate(zip(values, labels))]  # fmt: skip


def test_results_rows_name_their_interval_and_clusters():
    records = _records(30, 8, np.random.default_rng(5))
    by_image = compute(records, ["strict"]).preset("strict").get("overall")
    by_question = compute(records, ["strict"], cluster="none").preset("strict").get("overall")
    assert by_image.interval == "cluster bootstrap by image, 1000 resamples, 95% percentile" and by_image.clusters == 30
    assert by_question.interval == "bootstrap by question, 1000 resamples, 95% percentile" and by_question.clusters is None
    assert by_image.value == by_question.value
    assert by_image.ci_high - by_image.ci_low > by_question.ci_high - by_question.ci_low
    assert compute(records, ["strict"]).interval == by_image.interval


def test_compare_resamples_images_by_default(tmp_path):
    from runfolders import make_run

    from medprobe.compare import compare

    rng = np.random.default_rng(7)
    records = _records(20, 6, rng)
    samples = [r.sample for r in records]
    a = make_run(tmp_path / "a", samples, [r.final.text for r in records], model="a")
    flipped_images = set(rng.choice(20, 6, replace=False))  # B answers every question of 6 images the other way
    flips = [int(s.images[0].path[3:-4]) in flipped_images for s in samples]
    b = make_run(tmp_path / "b", samples, [("no" if r.final.text == "yes" else "yes") if f else r.final.text
                                           for r, f in zip(records, flips)], model="b")  # fmt: skip
    by_image, by_item = compare(a, b), compare(a, b, cluster="none")
    assert by_image.interval.startswith("cluster bootstrap by image")
    assert by_item.interval.startswith("bootstrap by question")
    assert by_image.difference == by_item.difference
    assert by_image.paired_ci.high - by_image.paired_ci.low > by_item.paired_ci.high - by_item.paired_ci.low


def test_cli_cluster_key(tmp_path):
    import json

    from runfolders import make_run
    from typer.testing import CliRunner

    from medprobe.cli import app

    records = _records(10, 3, np.random.default_rng(3))
    run = make_run(tmp_path / "run", [r.sample for r in records], [r.final.text for r in records])
    for key, method in (("none", "bootstrap by question"), ("modality", "cluster bootstrap by modality"),
                        ("image", "cluster bootstrap by image")):  # fmt: skip
        out = CliRunner().invoke(app, ["score", str(run), "--json", "--cluster-key", key])
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["interval"].startswith(method)
    bad = CliRunner().invoke(app, ["score", str(run), "--cluster-key", "patient_id"])
    assert bad.exit_code == 2 and "no sample has a metadata column 'patient_id'" in bad.output
