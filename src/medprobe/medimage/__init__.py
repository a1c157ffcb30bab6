"""Medical image sources (DICOM files and series, NIfTI volumes) rendered to 8-bit PNG for a model.

Nothing here imports pydicom or nibabel until a medical file is actually rendered; `medprobe.imaging`
calls `render.maybe_render` for every image and gets None back, cheaply, for plain PNG/JPEG files.
Only pixel data and the pixel-module tags needed to display it are read from a DICOM file, so no
header value (patient, dates, institution, ...) can reach a prompt, record, log or report.
"""
