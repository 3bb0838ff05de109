"""Convert the 20 real sagittal CT images (TCIA COVID-19-NY-SBU) into small 2D NIfTI test files.

Usage::

    python benchmarks/make_sagittal_reference.py [--source /work/shared/data/real/covid_sagittal]
                                                 [--out Testing/Data/real/covid_sagittal]

Each DICOM file ``<name>.dcm`` becomes ``<name>.nii.gz``: a 2D int16 image in Hounsfield units
(stored value x RescaleSlope + RescaleIntercept), pixel spacing (column, row) in mm from
PixelSpacing (0028,0030; DICOM order "row \\ column"), origin 0 and identity direction. Only the
pixel data and the spacing are copied: no DICOM header element (names, IDs, dates, UIDs,
institution) reaches the NIfTI file; the file name (anonymised accession and shifted date, as
published by TCIA) is kept so that the two dates of a patient stay paired. Array row 0 is the
top of the image (cranial), column 0 the left of the image (anterior for these sagittal series).
A ``LICENSE`` with the attribution is written beside the images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

LICENSE_TEXT = """\
Real sagittal CT images, one 2D slice per file (10 patients x 2 dates).

Source: The Cancer Imaging Archive (TCIA), collection COVID-19-NY-SBU:
  Saltz J, Saltz M, Prasanna P, Moffitt R, Hajagos J, Bremer E, Balsamo J, Kurc T.
  Stony Brook University COVID-19 Positive Cases [Data set]. The Cancer Imaging Archive, 2021.
  https://doi.org/10.7937/TCIA.BBAG-2923
Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
  https://creativecommons.org/licenses/by/4.0/
  Please also cite TCIA: Clark K, et al. The Cancer Imaging Archive (TCIA): maintaining and
  operating a public information repository. J Digit Imaging 2013;26(6):1045-1057.

Copy found in github SaltyJoke/Image-Registration (data-sample/*/sagittal).

Changes made for this project (benchmarks/make_sagittal_reference.py): each DICOM file converted
to a 2D NIfTI file (int16, Hounsfield units = stored value x RescaleSlope + RescaleIntercept,
pixel spacing from PixelSpacing); all DICOM header elements dropped. File names (TCIA's
anonymised accession and shifted date) unchanged.
"""


def read_hu(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    """Read one DICOM slice as HU ``int16[row, column]`` and its spacing ``(column_mm, row_mm)``.

    Args:
        path: a single-frame DICOM file.

    Returns:
        The image in Hounsfield units and the pixel spacing.

    Raises:
        ValueError: if the file has no PixelSpacing or more than one frame.

    """
    import pydicom

    dataset = pydicom.dcmread(str(path))
    pixels = dataset.pixel_array
    if pixels.ndim != 2:
        raise ValueError(f"{path.name}: expected one 2D frame, got shape {pixels.shape}")
    if "PixelSpacing" not in dataset:
        raise ValueError(f"{path.name}: no PixelSpacing")
    row_mm, col_mm = (float(v) for v in dataset.PixelSpacing)
    slope = float(getattr(dataset, "RescaleSlope", 1.0))
    intercept = float(getattr(dataset, "RescaleIntercept", 0.0))
    hu = np.rint(pixels.astype(np.float64) * slope + intercept)
    hu = np.clip(hu, -1024, 3071).astype(np.int16)  # outside-FOV padding (e.g. -2000) -> air
    return hu, (col_mm, row_mm)


def write_nifti(hu: np.ndarray, spacing: tuple[float, float], path: Path) -> None:
    """Write a 2D HU image with its spacing and nothing else (origin 0, identity direction)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(hu)
    image.SetSpacing(spacing)
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(path))
    writer.SetUseCompression(True)
    writer.Execute(image)


def main(argv: list[str] | None = None) -> int:
    """Convert every ``*.dcm`` of ``--source`` and print name, size, spacing, HU range and bytes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/work/shared/data/real/covid_sagittal")
    parser.add_argument("--out", default="Testing/Data/real/covid_sagittal")
    args = parser.parse_args(argv)
    source, out = Path(args.source), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(source.glob("*.dcm"))
    if not files:
        print(f"no DICOM files in {source}", file=sys.stderr)
        return 1
    total = 0
    for dicom in files:
        hu, spacing = read_hu(dicom)
        target = out / f"{dicom.stem}.nii.gz"
        write_nifti(hu, spacing, target)
        size = target.stat().st_size
        total += size
        print(f"{target.name}: {hu.shape[1]} x {hu.shape[0]} px, {spacing[0]:.4f} x {spacing[1]:.4f} mm, "
              f"HU {hu.min()}..{hu.max()}, {size / 1024:.0f} kB")
    (out / "LICENSE").write_text(LICENSE_TEXT)
    print(f"{len(files)} images, {total / 1e6:.2f} MB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
