"""DICOM and NIfTI rendering on the real files pydicom and nibabel ship: LUTs, windows, series order,
multi-frame, MONOCHROME1, RAS reorientation, montage, hashing, missing decoders and extras."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from medfiles import NIB_DATA, ct, multiframe, nifti_pair, sample_file, write_series
from PIL import Image

from medprobe import imaging
from medprobe.medimage.window import linear, pick
from medprobe.types import ImageRef, ImageView


def pixels(ref: ImageRef) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(imaging.read_bytes(ref))))


def ref(path, root=None, **view) -> ImageRef:
    return ImageRef(path=str(path if root is None else path.relative_to(root)), root=str(root) if root else None,
                    view=ImageView(**view) if view else None)


def test_single_file_modality_lut_then_window():
    ds = ct()
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    got = pixels(ref(sample_file("CT_small.dcm"), window="40,400"))
    assert got.dtype == np.uint8 and got.shape == (128, 128)
    assert np.array_equal(got, linear(hu, 40, 400))


def test_series_folder_sorted_by_position_middle_index_fraction_and_montage(tmp_path):
    arrays = write_series(tmp_path / "s", n=5)
    hu = [a - 1024.0 for a in arrays]
    assert np.array_equal(pixels(ref(tmp_path / "s", tmp_path, window="lung")), linear(hu[2], -600, 1500))
    assert np.array_equal(pixels(ref(tmp_path / "s", tmp_path, window="lung", slice="-1")), linear(hu[4], -600, 1500))
    assert np.array_equal(pixels(ref(tmp_path / "s", tmp_path, window="lung", slice="0.0")), linear(hu[0], -600, 1500))
    grid = pixels(ref(tmp_path / "s", tmp_path, window="bone", montage=4))
    assert grid.shape == (256, 256)
    for tile, index in zip([(0, 0), (0, 1), (1, 0), (1, 1)], pick(5, None, 4, "x"), strict=True):
        r, c = tile
        assert np.array_equal(grid[r * 128 : (r + 1) * 128, c * 128 : (c + 1) * 128], linear(hu[index], 400, 1800))
    with pytest.raises(imaging.ImageError, match="out of range.*5 slice"):
        imaging.read_bytes(ref(tmp_path / "s", tmp_path, slice="9"))


def test_multiframe_picks_the_frame(tmp_path):
    arrays = multiframe(tmp_path / "mf.dcm", frames=3)
    got = pixels(ref(tmp_path / "mf.dcm", tmp_path, window="0,2000", slice="2"))
    assert np.array_equal(got, linear(arrays[2] - 1024.0, 0, 2000))


def test_monochrome1_is_inverted(tmp_path):
    ds = ct()
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    normal = pixels(ref(sample_file("CT_small.dcm"), window="lung"))
    assert np.array_equal(pixels(ref(tmp_path / "m1.dcm", tmp_path, window="lung")), 255 - normal)


def test_file_voi_window_is_the_default(tmp_path):
    ds = ct()
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.save_as(tmp_path / "w.dcm")
    assert np.array_equal(pixels(ref(tmp_path / "w.dcm", tmp_path)), pixels(ref(sample_file("CT_small.dcm"), window="40,400")))


def test_hash_follows_pixels_and_settings():
    path = sample_file("CT_small.dcm")
    lung, bone = ref(path, window="lung"), ref(path, window="bone")
    assert imaging.sha256(lung) != imaging.sha256(bone)
    assert imaging.sha256(lung) == imaging.sha256(ref(path, window="lung"))
    assert imaging.to_data_url(lung).startswith("data:image/png;base64,")


def test_compressed_syntaxes_decode_or_name_the_missing_decoder():
    assert pixels(ref(sample_file("MR_small_RLE.dcm"))).shape == (64, 64)  # RLE: pydicom's own decoder
    try:
        import pylibjpeg  # noqa: F401
        pytest.skip("a JPEG-LS decoder is installed")
    except ImportError:
        pass
    with pytest.raises(imaging.ImageError, match=r"JPEG-LS.*no installed decoder.*pip install pylibjpeg"):
        imaging.read_bytes(ref(sample_file("JPEGLSNearLossless_16.dcm")))


def test_nifti_is_reoriented_to_ras_before_slicing(tmp_path):
    ras, lpi = nifti_pair(tmp_path)
    for plane in ("axial", "coronal", "sagittal"):
        a = pixels(ref(ras, tmp_path, plane=plane, montage=3, window="minmax"))
        b = pixels(ref(lpi, tmp_path, plane=plane, montage=3, window="minmax"))
        assert np.array_equal(a, b), plane
    axial = pixels(ref(ras, tmp_path))
    assert axial.shape[0] > 1 and axial.max() == 255
    assert not np.array_equal(axial, pixels(ref(ras, tmp_path, slice="0.1")))


def test_nifti_4d_shows_the_first_volume():
    img = pixels(ImageRef(path="example4d.nii.gz", root=str(NIB_DATA), view=ImageView(plane="coronal")))
    assert img.ndim == 2 and img.size > 0


def test_missing_extra_names_it(monkeypatch, tmp_path):
    write_series(tmp_path / "s", n=2)
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(imaging.ImageError, match=r"pip install 'medprobe\[dicom\]'"):
        imaging.read_bytes(ref(tmp_path / "s", tmp_path, window="bone"))


def test_importing_medprobe_loads_neither_pydicom_nor_nibabel():
    code = ("import sys, medprobe, medprobe.cli, medprobe.imaging, medprobe.pipeline, medprobe.benchmarks.custom; "
            "assert not {'pydicom', 'nibabel'} & set(sys.modules), sorted({'pydicom', 'nibabel'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], check=True)
