"""Build DICOM and NIfTI test files from the real samples pydicom and nibabel ship in their wheels."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")
from pydicom.data import get_testdata_file  # noqa: E402

NIB_DATA = Path(nib.__file__).parent / "tests" / "data"

#: identifying elements planted with known strings (PS3.15 Annex E basic profile, plus descriptions)
PHI_TAGS = [
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientAddress",
    "OtherPatientIDs", "PatientComments", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
    "InstanceCreationDate", "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime", "AccessionNumber",
    "InstitutionName", "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "StationName", "StudyDescription", "SeriesDescription", "StudyID", "DeviceSerialNumber",
    "ProtocolName", "RequestingPhysician", "ImageComments",
]  # fmt: skip
_DATE_VRS = {"DA": "19020304", "TM": "235959", "DT": "19020304235959", "AS": "099Y", "CS": "O"}


def sample_file(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom's wheel lacks {name}")
    return Path(path)


def ct() -> pydicom.Dataset:
    return pydicom.dcmread(sample_file("CT_small.dcm"))


def plant_phi(ds: pydicom.Dataset, marker: str) -> list[str]:
    """Set every identifying tag to a findable value; returns the planted strings to grep for."""
    from pydicom.datadict import dictionary_VR

    planted = []
    for i, keyword in enumerate(PHI_TAGS):
        vr = dictionary_VR(keyword)
        if vr in _DATE_VRS:
            value = _DATE_VRS[vr]
            if vr in ("DA", "DT"):
                planted.append(value)
        else:
            value = f"{marker}{i:02d}{keyword}"[:16 if vr in ("SH", "AE") else 64]
            planted.append(value)
        setattr(ds, keyword, value)
    uid = f"1.2.826.0.1.{marker_digits(marker)}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid + ".1", uid + ".2"
    planted.append(uid)
    return planted


def marker_digits(marker: str) -> str:
    return str(sum(ord(c) for c in marker) * 7919)


def write_series(folder: Path, n: int = 5, marker: str | None = None) -> list[np.ndarray]:
    """n slices from CT_small, shuffled file names, each slice's pixels offset by 10*position.
    Returns the raw pixel arrays in spatial order (inferior to superior)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = ct()
    arrays = []
    order = [3, 0, 4, 1, 2, *range(5, n)][:n]  # file name order differs from spatial order
    for pos in range(n):
        ds = copy.deepcopy(base)
        arr = (base.pixel_array.astype(np.int32) + 10 * pos).astype(np.int16)
        ds.PixelData = arr.tobytes()
        ds.ImagePositionPatient = [0.0, 0.0, float(5 * pos)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.InstanceNumber = n - pos  # deliberately reversed: position must win
        if marker:
            plant_phi(ds, marker)
        ds.SOPInstanceUID = f"1.2.826.0.1.3.{pos}"
        ds.save_as(folder / f"IM{order[pos]:04d}", enforce_file_format=True)
        arrays.append(arr)
    (folder / "README.txt").write_text("not a DICOM file")
    return arrays


def multiframe(path: Path, frames: int = 3) -> list[np.ndarray]:
    ds = ct()
    arrays = [(ds.pixel_array.astype(np.int32) + 100 * f).astype(np.int16) for f in range(frames)]
    ds.NumberOfFrames = frames
    ds.PixelData = b"".join(a.tobytes() for a in arrays)
    ds.save_as(path, enforce_file_format=True)
    return arrays


def nifti_pair(folder: Path) -> tuple[Path, Path]:
    """anatomical.nii as shipped (RAS-ish) and the same volume stored flipped in x and z (LPI)."""
    img = nib.load(NIB_DATA / "anatomical.nii")
    data = np.asarray(img.dataobj)
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[0, 3], flip[2, 3] = data.shape[0] - 1, data.shape[2] - 1
    flipped = nib.Nifti1Image(data[::-1, :, ::-1].copy(), img.affine @ flip)
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / "ras.nii", folder / "lpi.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), a)
    nib.save(flipped, b)
    return a, b
