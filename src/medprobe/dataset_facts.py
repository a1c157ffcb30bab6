"""Where each benchmark's data comes from, in one table: hub id, licence, gated or not, the folder
`medprobe data get` writes and `--data-root` reads, and the counts (and hashes) of the official release.

`medprobe data list | get | check` (medprobe.datasets_cmd) and `medprobe suite --data-root`
(medprobe.suites) read this table; nothing else knows where a dataset lives. Counts are those the
release or its paper publishes (PROTOCOLS.md); hashes are the official ones where a release
publishes them, else the sha256 of the copy medprobe's tests use ("reference copy").
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from medprobe.types import Frozen

REFERENCE = "medprobe's reference copy"  # the copy medprobe's tests were built from


class HubSource(Frozen):
    """A Hugging Face repo and the files of it a run needs (`huggingface_hub.snapshot_download`)."""

    repo_id: str
    repo_type: str = "dataset"
    allow_patterns: tuple[str, ...] = Field((), description="question files; empty = the whole repo")
    image_patterns: tuple[str, ...] = Field((), description="image archives (large); skipped with --no-images")
    archives: tuple[str, ...] = Field((), description="zip files unpacked into the folder after the download")


class ExpectedFile(Frozen):
    """A file of the release: `path` is a glob relative to the dataset folder ('|' separates names the
    same file has in different copies); rows are summed over the files it matches."""

    path: str
    rows: int | None = Field(None, description="rows (JSON list items / dict entries, JSONL lines, CSV/TSV rows, "
                             "parquet rows) the release has; None = no published count")
    sha256: str | None = None
    sha256_source: str = Field("", description="who publishes the hash: the release, or medprobe's reference copy")
    required: bool = Field(True, description="False: one of several layouts (e.g. the official JSON or the hub copy)")


class ExpectedSplit(Frozen):
    """Samples the benchmark's loader must find in a split (what `medprobe run` will evaluate)."""

    split: str
    samples: int
    source: str = Field(description="where the count is published")


class DatasetFacts(Frozen):
    benchmark: str
    folder: str = Field(description="DIR/<folder> for `data get --to DIR` and `--data-root DIR`; empty = packaged")
    homepage: str
    licence: str
    gated: bool = False
    hub: HubSource | None = Field(None, description="None: not on a dataset hub (see `manual`)")
    manual: str = Field("", description="how to get what the hub does not hold (printed by `data get`)")
    data: tuple[str, ...] = Field(("",), description="candidate --data paths inside the folder, first found wins "
                                  "('' = the folder itself)")
    images: tuple[str, ...] = Field((), description="candidate --images-dir paths inside the folder")
    files: tuple[ExpectedFile, ...] = ()
    splits: tuple[ExpectedSplit, ...] = ()


_SLAKE = dict(
    folder="SLAKE", homepage="https://www.med-vqa.com/slake/", licence="CC BY 4.0",
    hub=HubSource(repo_id="BoKelvin/SLAKE", allow_patterns=("*.json", "mask.txt", "README.md"),
                  image_patterns=("imgs.zip",), archives=("imgs.zip",)),
    files=(
        ExpectedFile(path="test.json", rows=2094, sha256_source=REFERENCE,
                     sha256="6be8f7b4c5a46cdbc713a5210a25b6ed5aa1fd1574c83cefb4f998131f17c2c3"),
        # the hub renamed validate.json (the release's name) to validation.json in Feb 2024
        ExpectedFile(path="validate.json|validation.json", rows=2099, sha256_source=REFERENCE,
                     sha256="32b016440b0c3be11056a78a18eeab46333268407fbb6e6b32f9f4c2debc50f6"),
    ),
)  # fmt: skip
_SMMILE_STEPS = ("1. open https://huggingface.co/datasets/{repo}, log in and accept the access conditions;\n"
                 "2. log this machine in: `hf auth login` (or set HF_TOKEN);\n"
                 "3. run `medprobe data get {name} --to DIR --accept-terms`.")
_MMMU_SUBJECTS = ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy",
                  "Public_Health")

FACTS: dict[str, DatasetFacts] = {f.benchmark: f for f in [
    DatasetFacts(
        benchmark="vqa-rad", folder="vqa-rad", homepage="https://osf.io/89kps/", licence="CC0 1.0",
        hub=HubSource(repo_id="flaviagiammarino/vqa-rad", allow_patterns=("data/*", "README.md")),
        manual=("The official release (VQA_RAD Dataset Public.json, with phrase_type and answer_type, and the "
                "VQA_RAD Image Folder) is on OSF, not on a dataset hub: download both from https://osf.io/89kps/ "
                "into DIR/vqa-rad/. `data get vqa-rad` fetches the Hugging Face copy (the 451 test questions with "
                "their images, no answer_type)."),
        data=("",), images=("VQA_RAD Image Folder", "images"),
        files=(
            ExpectedFile(path="VQA_RAD Dataset Public.json|vqa_rad_public.json", rows=2248, required=False,
                         sha256="948b7156059b864cf72344fb10669233526b175c243e5a046d20d4201d297a95",
                         sha256_source=REFERENCE),
            ExpectedFile(path="data/test-*.parquet", rows=451, required=False),
        ),
        splits=(ExpectedSplit(split="test", samples=451, source="PROTOCOLS.md: phrase_type test_freeform/test_para; "
                              "the hub copy's test split"),),
    ),
    DatasetFacts(
        benchmark="vqa-rad-demo", folder="", homepage="https://osf.io/89kps/", licence="CC0 1.0",
        manual="Packaged with medprobe: nothing to download.",
        files=(ExpectedFile(path="vqa_rad_demo.json", rows=65, sha256_source="packaged",
                            sha256="3c01a4e8f0705dfe6f2d0e5d3760414135913caae01c236d07ae743bfa1ac8c1"),
               ExpectedFile(path="images/*.jpg", rows=9)),
        splits=(ExpectedSplit(split="all", samples=65, source="packaged"),
                ExpectedSplit(split="test", samples=15, source="packaged")),
    ),
    DatasetFacts(benchmark="slake-en", **_SLAKE, splits=(
        ExpectedSplit(split="test", samples=1061, source="PROTOCOLS.md: q_lang en, 416 closed + 645 open"),
        ExpectedSplit(split="validation", samples=1053, source="SLAKE 1.0 validate.json, q_lang en")),
    ),
    DatasetFacts(benchmark="slake-zh", **_SLAKE, splits=(
        ExpectedSplit(split="test", samples=1033, source="SLAKE 1.0 test.json, q_lang zh"),
        ExpectedSplit(split="validation", samples=1046, source="SLAKE 1.0 validate.json, q_lang zh")),
    ),
    DatasetFacts(
        benchmark="pathvqa", folder="path-vqa", homepage="https://github.com/UCSD-AI4H/PathVQA", licence="MIT",
        hub=HubSource(repo_id="flaviagiammarino/path-vqa", allow_patterns=("data/*", "README.md")),
        files=(ExpectedFile(path="data/test-*.parquet", rows=6719),
               ExpectedFile(path="data/validation-*.parquet", rows=6259),
               ExpectedFile(path="data/train-*.parquet", rows=19654)),
        splits=(ExpectedSplit(split="test", samples=6719, source="PROTOCOLS.md; the hub card (32,632 in all)"),),
    ),
    DatasetFacts(
        benchmark="pmc-vqa", folder="PMC-VQA", homepage="https://github.com/xiaoman-zhang/PMC-VQA",
        licence="not stated (PubMed Central open-access figures)",
        # version 1: images.zip unpacks to images/; version 2 (test_2.csv, Lingshu's set): images_2.zip to figures/
        hub=HubSource(repo_id="xmcmic/PMC-VQA", allow_patterns=("*.csv", "README.md"),
                      image_patterns=("images.zip", "images_2.zip"), archives=("images.zip", "images_2.zip")),
        files=(ExpectedFile(path="test_clean.csv", rows=2000),
               ExpectedFile(path="test_2.csv", rows=None, required=False)),
        splits=(ExpectedSplit(split="test", samples=2000,
                              source="PMC-VQA README: test_clean.csv, the cleaned test set"),),
    ),
    DatasetFacts(
        benchmark="medxpertqa-mm", folder="MedXpertQA", homepage="https://github.com/TsinghuaC3I/MedXpertQA",
        licence="MIT",
        hub=HubSource(repo_id="TsinghuaC3I/MedXpertQA", allow_patterns=("MM/*", "README.md"),
                      image_patterns=("images.zip",), archives=("images.zip",)),
        data=("medxpertqa_mm_input.jsonl", "MM/test.jsonl", ""), images=("images",),
        files=(ExpectedFile(path="medxpertqa_mm_input.jsonl", rows=2000, required=False, sha256_source=REFERENCE,
                            sha256="8742b0d55c3f7fc9b3f9d793322d1e53b537dabfbbbdeeb6e24d255bf0f2b88b"),
               ExpectedFile(path="MM/test.jsonl", rows=2000, required=False)),
        splits=(ExpectedSplit(split="test", samples=2000, source="PROTOCOLS.md: 2,000 multimodal test questions"),),
    ),
    DatasetFacts(
        benchmark="mediconfusion", folder="MediConfusion", homepage="https://github.com/AIF4S/MediConfusion",
        licence="MIT (questions); images: each PMC article's licence",
        manual=("Not on a dataset hub. `git clone https://github.com/AIF4S/MediConfusion DIR/MediConfusion`, then in "
                "that folder `python scripts/download.py` (downloads the 352 ROCO images from PubMed Central into "
                "data/images, 26 MB)."),
        data=("data", ""),
        files=(ExpectedFile(path="data/dataset.json|dataset.json", rows=176, sha256_source=REFERENCE,
                            sha256="36e5052ebe370aac7446f29cb1425fa47b1795b40e2e7a72462c93b5472c0d5f"),),
        splits=(ExpectedSplit(split="test", samples=352, source="PROTOCOLS.md: 176 pairs, one sample per image"),),
    ),
    DatasetFacts(
        benchmark="probmed", folder="ProbMed", homepage="https://github.com/eric-ai-lab/ProbMed", licence="MIT",
        hub=HubSource(repo_id="rippleripple/ProbMed"),
        files=(ExpectedFile(path="test/test.json|test.json|probmed.json", rows=57132),),
        splits=(ExpectedSplit(split="test", samples=57132, source="PROTOCOLS.md: 57,132 questions on 6,303 images"),),
    ),
    DatasetFacts(
        benchmark="smmile", folder="SMMILE", homepage="https://github.com/eth-medical-ai-lab/smmile",
        licence="CC BY-NC-SA 4.0", gated=True, hub=HubSource(repo_id="smmile/SMMILE"),
        manual=_SMMILE_STEPS.format(repo="smmile/SMMILE", name="smmile"),
        files=(ExpectedFile(path="**/*.parquet", rows=517),),
        splits=(ExpectedSplit(split="icl", samples=111, source="PROTOCOLS.md: 111 problems, 517 rows"),),
    ),
    DatasetFacts(
        benchmark="smmile-plus", folder="SMMILE-plusplus", homepage="https://github.com/eth-medical-ai-lab/smmile",
        licence="see the hub card (SMMILE: CC BY-NC-SA 4.0)", gated=True,
        hub=HubSource(repo_id="smmile/SMMILE-plusplus"),
        manual=_SMMILE_STEPS.format(repo="smmile/SMMILE-plusplus", name="smmile-plus"),
        splits=(ExpectedSplit(split="icl", samples=1038, source="PROTOCOLS.md: 1,038 permuted problems"),),
    ),
    DatasetFacts(
        benchmark="omnimedvqa", folder="OmniMedVQA", homepage="https://github.com/OpenGVLab/Multi-Modality-Arena",
        licence="per source dataset (no single licence)",
        hub=HubSource(repo_id="foreverbeliever/OmniMedVQA", allow_patterns=("README.md",),
                      image_patterns=("OmniMedVQA.zip",), archives=("OmniMedVQA.zip",)),
        manual=("The hub holds one archive (OmniMedVQA.zip, 10.7 GB) with QA_information/ and the open-access "
                "Images/; restricted-access images come from each source dataset (their paths are in "
                "QA_information/Restricted-access)."),
        files=(ExpectedFile(path="QA_information/*/*.json", rows=127995),
               ExpectedFile(path="QA_information/Open-access/*.json", rows=None)),
    ),
    DatasetFacts(
        benchmark="mmmu-med", folder="MMMU", homepage="https://mmmu-benchmark.github.io/", licence="Apache-2.0",
        hub=HubSource(repo_id="MMMU/MMMU", allow_patterns=tuple(f"{s}/*" for s in _MMMU_SUBJECTS)),
        files=(ExpectedFile(path="*/validation-*.parquet", rows=150), ExpectedFile(path="*/dev-*.parquet", rows=25)),
        splits=(ExpectedSplit(split="validation", samples=150, source="MMMU: 30 validation questions per subject, "
                              "5 Health & Medicine subjects"),
                ExpectedSplit(split="dev", samples=25, source="MMMU: 5 dev questions per subject")),
    ),
    DatasetFacts(
        benchmark="gmai-mmbench", folder="GMAI-MMBench", homepage="https://github.com/uni-medical/GMAI-MMBench",
        licence="Apache-2.0",
        # VAL: VLMEvalKit's copy (what VLMEvalKit downloads); TEST (no answers) is OpenGVLab/GMAI-MMBench, gated
        hub=HubSource(repo_id="VLMEval/GMAI-MMBench", allow_patterns=("GMAI-MMBench_VAL.tsv", "README.md")),
        manual=("TEST (no answers; the authors score it) is on the gated OpenGVLab/GMAI-MMBench: accept its "
                "conditions on the hub page, `hf auth login`, then download GMAI_mm_bench_TEST_part_1..11.tsv "
                "into the same folder."),
        files=(ExpectedFile(path="GMAI-MMBench_VAL.tsv|GMAI_mm_bench_VAL.tsv", rows=None),),
    ),
    DatasetFacts(
        benchmark="medframeqa", folder="MedFrameQA", homepage="https://github.com/haojinw0027/MedFrameQA",
        licence="CC BY 4.0",
        hub=HubSource(repo_id="SuhaoYu1020/MedFrameQA", allow_patterns=("data/*", "README.md")),
        files=(ExpectedFile(path="data/*.parquet", rows=2851),),
        splits=(ExpectedSplit(split="test", samples=2851, source="MedFrameQA (Yu et al., 2025): 2,851 questions"),),
    ),
    DatasetFacts(
        benchmark="iu-xray", folder="iu_xray", homepage="https://openi.nlm.nih.gov/",
        licence="NLM Open-i terms of use (no named licence stated)",
        manual=("IU-Xray is not on a dataset hub in the R2Gen layout. Download iu_xray.zip from the link in "
                "https://github.com/zhjohnchan/R2Gen (README, Datasets) and unzip it into DIR/iu_xray (annotation.json "
                "and images/<study>/0.png, 1.png). Or MedEvalKit's layout: datas/IU_XRAY/test.json of "
                "https://github.com/alibaba-damo-academy/MedEvalKit with the Open-i PNGs "
                "(https://openi.nlm.nih.gov/imgs/collections/NLMCXR_png.tgz) unpacked into images/ beside it."),
        files=(ExpectedFile(path="annotation.json|test.json"),),
        splits=(ExpectedSplit(split="test", samples=590, source="R2Gen (Chen et al., EMNLP 2020) Table 1: IU X-RAY "
                              "test 590 reports (train 2,069, val 296); MedEvalKit's test.json has 296"),),
    ),
    DatasetFacts(
        benchmark="mimic-cxr", folder="mimic-cxr-jpg", homepage="https://physionet.org/content/mimic-cxr-jpg/2.1.0/",
        licence="PhysioNet Credentialed Health Data License 1.5.0", gated=True,
        manual=("MIMIC-CXR is credentialed (PhysioNet), not on a dataset hub:\n"
                "1. become a credentialed PhysioNet user (https://physionet.org/settings/credentialing/) and complete "
                "the CITI 'Data or Specimens Only Research' course;\n"
                "2. accept and sign the data use agreements of MIMIC-CXR-JPG (https://physionet.org/content/"
                "mimic-cxr-jpg/2.1.0/) and of MIMIC-CXR (https://physionet.org/content/mimic-cxr/2.1.0/), which "
                "holds the reports;\n"
                "3. from MIMIC-CXR-JPG download mimic-cxr-2.0.0-split.csv.gz, mimic-cxr-2.0.0-metadata.csv.gz and "
                "files/ (all, or the studies of the split you evaluate) into DIR/mimic-cxr-jpg, e.g. `wget -r -N -c "
                "-np --user USER --ask-password https://physionet.org/files/mimic-cxr-jpg/2.1.0/`;\n"
                "4. from MIMIC-CXR download mimic-cxr-reports.zip and unzip it into the same folder "
                "(files/pXX/pXXXXXXXX/sXXXXXXXX.txt beside the image folders);\n"
                "5. run `medprobe data check mimic-cxr --data DIR/mimic-cxr-jpg`, then `medprobe run mimic-cxr "
                "--data DIR/mimic-cxr-jpg --section findings ...`."),
        files=(ExpectedFile(path="mimic-cxr-2.0.0-split.csv.gz|mimic-cxr-2.0.0-split.csv"),
               ExpectedFile(path="mimic-cxr-2.0.0-metadata.csv.gz|mimic-cxr-2.0.0-metadata.csv")),
    ),
    DatasetFacts(
        benchmark="chexpert-plus", folder="chexpert-plus", homepage="https://aimi.stanford.edu/datasets/chexpert-plus",
        licence="Stanford University School of Medicine CheXpert Plus Dataset Research Use Agreement", gated=True,
        manual=("CheXpert Plus is credentialed (Stanford AIMI), not on a dataset hub:\n"
                "1. open https://aimi.stanford.edu/datasets/chexpert-plus, log in and accept the research use "
                "agreement;\n"
                "2. download df_chexpert_plus_240401.csv and the PNG images (or use your CheXpert-v1.0 JPGs) from "
                "the links you are given, into DIR/chexpert-plus (images: train/ and valid/ there or under PNG/);\n"
                "3. run `medprobe run chexpert-plus --data DIR/chexpert-plus ...` (--images-dir when the images "
                "are elsewhere)."),
        files=(ExpectedFile(path="df_chexpert_plus_240401.csv"),),
    ),
]}  # fmt: skip


def facts(benchmark: str) -> DatasetFacts:
    """The row of `benchmark`; a clear error for a name the table does not know."""
    if benchmark not in FACTS:
        raise ValueError(f"medprobe has no data facts for {benchmark!r}; known: {', '.join(sorted(FACTS))}.")
    return FACTS[benchmark]


class Located(Frozen):
    """What `--data` and `--images-dir` a benchmark's folder under a data root gives."""

    folder: str
    data: str
    images_dir: str | None = None


def locate(benchmark: str, root: Path) -> Located | None:
    """The benchmark's folder under `root` (`--data-root`) and the paths inside it a run reads;
    None when the folder is absent (or the benchmark is packaged)."""
    row = FACTS.get(benchmark)
    if row is None or not row.folder or not (root / row.folder).is_dir():
        return None
    return within(row, root / row.folder)


def within(row: DatasetFacts, folder: Path) -> Located:
    """The --data and --images-dir paths inside one copy of the dataset (first candidate found)."""
    data = next((folder / c for c in row.data if c and (folder / c).exists()), folder)
    images = next((folder / c for c in row.images if (folder / c).is_dir()), None)
    return Located(folder=str(folder), data=str(data), images_dir=str(images) if images else None)
