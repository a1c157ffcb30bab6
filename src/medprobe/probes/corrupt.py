"""corrupt: image corruptions at 5 severities, in the spirit of MedMNIST-C (Di Salvo et al., 2024),
written here with numpy / PIL / scipy.ndimage. Severity parameters are medprobe's own choice
(monotone in severity; level 1 is barely visible, level 5 clearly degrading).

Each corrupted image is written once, named by its sha256, under the run folder's `probe_images/`
(in memory when no folder is given), so its content hash enters the request key; a re-run reads it
back by its recipe (`medprobe.probes._store`) instead of rebuilding it. Every corruption is a
lossless PNG except `jpeg`, which is stored (and sent) as the JPEG file it made: the corruption is the
JPEG encoding itself, and re-encoding its decoded pixels as PNG cost 5-10x the bytes. Randomness
(noise, angles, offsets) is seeded by (seed, image sha256, corruption) rather than by sample id (the
same draw at every severity, so severity only scales it): every question about one image sees the
same corrupted image, which keeps questions comparable and computes each corrupted image once.

Size: noise does not compress losslessly, so `gaussian_noise` is most of the store (about 0.7-1 MB
per 1-megapixel image and severity; the other defaults 20-300 KB).

A sample whose image does not decode gets no variant (listed as skipped). worst_case_accuracy
counts a sample with a failed variant as not right under every corruption (not known to be).

On reports (`AnswerType.REPORT`) the figures are text metrics instead of accuracy: ROUGE-L and BLEU-4 of the
corrupted-image report against the reference, their drop from the clean report (paired by study), and the
corrupted report's similarity to the clean one (medprobe.probes._similarity).

Cost: the run asks every sample with images once per (corruption, severity). The default is
4 corruptions x severities 1, 3, 5 = 12 extra requests per sample; `corrupt:all@1,2,3,4,5` is 65x.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from medprobe import imaging
from medprobe.probes import _similarity
from medprobe.probes._base import ProbeResult
from medprobe.probes._kit import (Group, ProbeContext, ProbeSpec, answer_key, correct, generated_image, metric,
                                  paired_rows, tag, variant)
from medprobe.probes._store import FORMAT, LEGACY_FORMAT
from medprobe.probes._text import split_reports
from medprobe.stats import rng_for
from medprobe.types import ImageRef, Sample

NAME = "corrupt"
DEFAULT = ("gaussian_noise", "gaussian_blur", "jpeg", "contrast")
DEFAULT_SEVERITIES = (1, 3, 5)
#: enters every corrupted image's recipe: bump it when a corruption's output changes, so run folders
#: made before rebuild their images instead of reading the old ones back
VERSION = 1
JPEG_QUALITY = (80, 50, 30, 15, 7)


def _scale(x: np.ndarray) -> float:
    return max(x.shape[:2]) / 224  # spatial parameters are defined on a 224-pixel image


def gaussian_noise(x, s, rng):
    return x + rng.normal(0, (0.03, 0.06, 0.09, 0.13, 0.18)[s - 1], x.shape)


def speckle_noise(x, s, rng):
    return x + x * rng.normal(0, (0.08, 0.15, 0.22, 0.3, 0.4)[s - 1], x.shape)


def gaussian_blur(x, s, rng):
    from scipy import ndimage

    sigma = (0.5, 1.0, 1.5, 2.2, 3.0)[s - 1] * _scale(x)
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0)[: x.ndim])


def motion_blur(x, s, rng):
    from scipy import ndimage

    length = max(2, round((3, 5, 8, 11, 15)[s - 1] * _scale(x)))
    kernel = np.zeros((length, length))
    kernel[length // 2, :] = 1.0
    kernel = np.clip(ndimage.rotate(kernel, float(rng.uniform(0, 180)), reshape=False, order=1), 0, None)
    kernel /= kernel.sum()
    return ndimage.convolve(x, kernel[..., None] if x.ndim == 3 else kernel, mode="nearest")


def jpeg(x, s, rng):
    from PIL import Image

    buf = io.BytesIO()
    _to_pil(x).save(buf, format="JPEG", quality=JPEG_QUALITY[s - 1])
    return np.asarray(Image.open(buf), dtype=np.float64) / 255


def contrast(x, s, rng):
    mean = x.mean()
    return (x - mean) * (0.75, 0.6, 0.45, 0.3, 0.2)[s - 1] + mean


def brightness(x, s, rng):
    return x + (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1] * rng.choice((-1, 1))


def gamma(x, s, rng):
    g = (1.25, 1.5, 1.8, 2.2, 2.7)[s - 1]
    return np.clip(x, 0, 1) ** (g if rng.random() < 0.5 else 1 / g)


def _resample(x, factor, down, up):
    img = _to_pil(x)
    small = img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))), down)
    return np.asarray(small.resize(img.size, up), dtype=np.float64) / 255


def pixelate(x, s, rng):
    from PIL import Image

    return _resample(x, (0.6, 0.4, 0.25, 0.15, 0.1)[s - 1], Image.Resampling.BOX, Image.Resampling.NEAREST)


def downsample(x, s, rng):
    from PIL import Image

    return _resample(x, (0.6, 0.4, 0.25, 0.15, 0.1)[s - 1], Image.Resampling.BILINEAR, Image.Resampling.BILINEAR)


def rotation(x, s, rng):
    from scipy import ndimage

    angle = (5, 10, 15, 22, 30)[s - 1] * rng.choice((-1, 1))
    return ndimage.rotate(x, angle, axes=(1, 0), reshape=False, order=1, mode="constant", cval=0.0)


def crop_zoom(x, s, rng):
    from PIL import Image

    zoom = (1.1, 1.2, 1.35, 1.5, 1.75)[s - 1]
    h, w = x.shape[:2]
    ch, cw = round(h / zoom), round(w / zoom)
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = _to_pil(x[top : top + ch, left : left + cw])
    return np.asarray(crop.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float64) / 255


def bias_field(x, s, rng):
    # MRI intensity non-uniformity: a smooth multiplicative field (low-order polynomial in x, y)
    h, w = x.shape[:2]
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    c = rng.normal(0, 1, 5)
    field = c[0] * xx + c[1] * yy + c[2] * xx * yy + c[3] * xx**2 + c[4] * yy**2
    field = field / (np.abs(field).max() or 1)
    mult = np.exp((0.1, 0.2, 0.3, 0.45, 0.6)[s - 1] * field)
    return x * (mult[..., None] if x.ndim == 3 else mult)


def ct_window(x, s, rng):
    # a different display window: centre shifted and width narrowed (as if windowed for other tissue)
    shift = (0.05, 0.1, 0.15, 0.2, 0.25)[s - 1] * rng.choice((-1, 1))
    width = (0.9, 0.8, 0.7, 0.6, 0.5)[s - 1]
    return (x - 0.5 - shift) / width + 0.5


CORRUPTIONS: dict[str, Callable] = {f.__name__: f for f in (
    gaussian_noise, speckle_noise, gaussian_blur, motion_blur, jpeg, contrast, brightness, gamma, pixelate,
    downsample, rotation, crop_zoom, bias_field, ct_window)}  # fmt: skip


def check(spec: ProbeSpec) -> None:
    spec.check((*CORRUPTIONS, "all"))
    if bad := [s for s in spec.levels if not 1 <= s <= 5]:
        raise ValueError(f"--probe {spec}: severities are 1-5, got {bad}")


def _to_pil(x: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.clip(np.rint(x * 255), 0, 255).astype(np.uint8))


def apply(img, name: str, severity: int, rng: np.random.Generator):
    """Corrupt a PIL image (L or RGB); returns a PIL image of the same size and mode."""
    x = np.asarray(img, dtype=np.float64) / 255
    y = CORRUPTIONS[name](x, severity, rng)
    out = _to_pil(y)
    return out if out.mode == img.mode else out.convert(img.mode)


@lru_cache(maxsize=64)  # images go to files; keep only a few in memory
def _corrupted(digest: str, ref: ImageRef, name: str, severity: int, seed: int, allow: bool,
               fmt: int = FORMAT) -> tuple[bytes, object | None]:  # fmt: skip
    """(the image's bytes, the PIL image they encode losslessly: None for a JPEG, whose decoded pixels differ)."""
    img = imaging.open_image(ref, allow_outside_root=allow)
    if img.mode == "RGB" and _is_grey(img):
        img = img.convert("L")  # most medical images are grey stored as RGB: one channel is 3x less work and memory
    buf = io.BytesIO()
    if name == "jpeg" and fmt > LEGACY_FORMAT:
        # the very file `jpeg` makes (the same call, on the same pixels: `_to_pil(x)` of `img` is `img`)
        img.save(buf, format="JPEG", quality=JPEG_QUALITY[severity - 1])
        return buf.getvalue(), None
    out = apply(img, name, severity, rng_for(seed, f"{digest}\x00{NAME}:{name}"))
    out.save(buf, format="PNG")
    return buf.getvalue(), out


def _is_grey(img) -> bool:
    a = np.asarray(img)
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def corrupt_ref(ref: ImageRef, name: str, severity: int, seed: int, allow_outside_root: bool = False,
                ctx: ProbeContext | None = None) -> ImageRef:
    """`ref` corrupted; with a context, read back from its store when made before (no decoding at all)."""
    digest = imaging.sha256(ref, allow_outside_root)
    label = f"{ref.describe()}~{name}@{severity}"
    if ctx is None:
        return ImageRef(data=_corrupted(digest, ref, name, severity, seed, allow_outside_root)[0], name=label)
    recipe = f"{NAME}/v{VERSION}/{name}@{severity}/seed={seed}/{digest}"
    return generated_image(ctx, recipe, label,
                           lambda fmt: _corrupted(digest, ref, name, severity, seed, allow_outside_root, fmt))


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    names = tuple(CORRUPTIONS) if "all" in ctx.spec.words else ctx.spec.words or DEFAULT
    severities = ctx.spec.levels or DEFAULT_SEVERITIES
    out = []
    for s in samples:
        if not s.images:
            continue
        try:
            made = [(name, sev, tuple(corrupt_ref(r, name, sev, ctx.seed, ctx.allow_outside_root, ctx) for r in s.images))
                    for name in names for sev in severities]  # fmt: skip
        except imaging.ImageError as exc:
            ctx.skip(s, exc)
            continue
        finally:
            ctx.advance()
        out += [variant(s, NAME, f"{name}@{sev}", images=images, detail={"corruption": name, "severity": sev})
                for name, sev, images in made]  # fmt: skip
    return out


def _cell(record) -> tuple[str, int]:
    detail = tag(record).detail
    return str(detail["corruption"]), int(detail["severity"])  # type: ignore[arg-type]


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    reports, groups = split_reports(groups)
    if reports:
        return _merge(_reports(reports, preset, seed), _questions(groups, preset, seed) if groups else None)
    return _questions(groups, preset, seed)


def _merge(reports: ProbeResult, questions: ProbeResult | None) -> ProbeResult:
    if questions is None:
        return reports
    return questions.model_copy(update={"headline": questions.headline + reports.headline,
                                        "rows": questions.rows + reports.rows,
                                        "note": f"{questions.note}; {reports.note}"})  # fmt: skip


def _reports(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    """Report studies: text metrics per (corruption, severity) cell (medprobe.probes._similarity)."""
    cells: dict[tuple[str, int], list] = {}
    lost: Counter[tuple[str, int]] = Counter(_cell(v) for g in groups.values() for v in g.failed)
    for g in groups.values():
        for v in g.variants:
            cells.setdefault(_cell(v), []).append((g.parent, v))
    rows = []
    for name, sev in sorted(set(cells) | set(lost)):
        rows += _similarity.corrupted(NAME, cells.get((name, sev), []), preset, seed, lost[(name, sev)],
                                      {"corruption": name, "severity": sev})  # fmt: skip
    clean = _similarity.clean_rows(NAME, [g.parent for g in groups.values()], preset, seed)
    worst = [w for w in (_similarity.worst(rows, "rouge_l_drop"), _similarity.worst(rows, "bleu4_drop")) if w]
    return ProbeResult(probe=NAME, headline=tuple(worst + clean), rows=tuple(rows),
                       note="on reports: rouge_l / bleu4 = corrupted-image report vs the reference; *_drop = clean "
                            "minus corrupted, paired by study; worst_* = the largest drop over (corruption, "
                            "severity); rouge_l_to_clean = corrupted vs clean report; intervals resample studies")  # fmt: skip


def _questions(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    cells: dict[tuple[str, int], list] = {}
    lost: Counter[tuple[str, int]] = Counter(_cell(v) for g in groups.values() for v in g.failed)
    flips, worst = [], []
    for g in groups.values():
        parent_key = answer_key(g.parent, preset)
        if g.variants:  # share of the answered variants (a failed one has no answer to compare)
            flips.append(np.mean([answer_key(v, preset) != parent_key for v in g.variants]))
        # right under every corruption; a failed variant means not known to be: counted not right
        worst.append(0.0 if g.failed else min(correct(v, preset) for v in g.variants))
        for v in g.variants:
            cells.setdefault(_cell(v), []).append((g.parent, v))
    rows = []
    for name, sev in sorted(set(cells) | set(lost)):
        rows += paired_rows(NAME, cells.get((name, sev), []), preset, seed, failed=lost[(name, sev)],
                            corruption=name, severity=sev)  # fmt: skip
    worst_drop = max((m for m in rows if m.name == "drop" and m.n), key=lambda m: m.value)
    failed = sum(lost.values())
    clean = metric(NAME, "clean_accuracy", [correct(g.parent, preset) for g in groups.values()], preset, seed)
    headline = (
        worst_drop.model_copy(update={"name": "worst_corruption_drop"}),
        metric(NAME, "flip_rate", flips, preset, seed, failed),
        metric(NAME, "worst_case_accuracy", worst, preset, seed, failed),
        clean,
    )
    return ProbeResult(probe=NAME, headline=headline, rows=tuple(rows),
                       note="drop = clean minus corrupted accuracy, paired by sample; worst_corruption_drop = the "
                            "largest drop over (corruption, severity); flip_rate = share of corrupted variants whose "
                            "parsed answer differs from the clean one; worst_case_accuracy = right under every "
                            "corruption")  # fmt: skip
