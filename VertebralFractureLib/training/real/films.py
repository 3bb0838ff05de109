"""Lateral films of real anatomy: digitally reconstructed radiographs of the real reference CTs.

The radiograph path has real sagittal CT *slices* to be checked on (``covid_sagittal``) but no real *film*: a
projection, where the iliac wings lie over the sacrum, ribs and scapulae over the thoracic bodies and the bowel over
everything. The generated columns it is trained on end at L4 / L5 (no sacrum, no pelvis). A lateral projection of a
real CT of the reference set (:mod:`.reference`) is a film of real anatomy with known levels: the same line
integrals as the generator's DRR (:func:`VertebralFractureLib.synth.drr.lateral_drr`: attenuation with bone
weighted for a radiograph's tube voltage, dynamic-range compression and unsharp masking, parallel beam or a point
source), optionally with a clinical look (:func:`~VertebralFractureLib.training.radiograph.appearance.
clinical_appearance`: scatter, heel effect, processing, grid, noise, collimation, burnt-in text). The annotated body
centres are projected with the film's own geometry.

Only evaluation uses these films (``benchmarks/bench_real_drr.py``, a regression test); they train nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

#: Pixel size (mm, isocentre plane) of the films: a lateral spine radiograph's detector pixel is 0.1-0.2 mm, and
#: the analysis reads at about 1 mm; the CTs behind the films have 1.1-3 mm voxels.
FILM_PIXEL_MM = 1.0
#: Source-to-detector distance of the point-source films (lateral spine radiographs: 1000-1150 mm).
FILM_SID_MM = 1000.0


@dataclass
class RealFilm:
    """A lateral film of one real CT and its projected reference.

    Attributes:
        case: the reference case (:func:`~VertebralFractureLib.training.real.reference.list_cases`).
        image: (rows, columns) float32 in ``[0, 1]``, bone bright; row 0 superior, column 0 anterior.
        pixel_mm: square pixel size in the isocentre plane (mm).
        centroids: level -> ``[column, row]`` of each annotated body centre.
        fractured: level -> whether the reference says the body looks fractured.
        in_view: level -> the reference's ``in_view`` (``"full"`` or ``"partial"``).

    """

    case: str
    image: np.ndarray
    pixel_mm: float
    centroids: Dict[str, np.ndarray]
    fractured: Dict[str, bool]
    in_view: Dict[str, str]


def real_film(case: str, sid_mm: Optional[float] = None, look_seed: Optional[int] = None,
              pixel_mm: float = FILM_PIXEL_MM) -> RealFilm:
    """The lateral film of a real reference CT.

    Args:
        case: reference case name (``"sample_ct"``, ``"cptac_chest"``...).
        sid_mm: source-to-detector distance for a point source (magnification and double contours away from the
            central ray); None for a parallel beam.
        look_seed: seed of a clinical look (:func:`~VertebralFractureLib.training.radiograph.appearance.
            clinical_appearance`); None for the plain DRR.
        pixel_mm: pixel size of the film (mm).

    Returns:
        The :class:`RealFilm`.

    """
    import SimpleITK as sitk

    from ...io.images import read_image, to_canonical
    from ...synth.drr import lateral_drr
    from ...synth.grid import Grid
    from ..radiograph.appearance import clinical_appearance
    from .reference import load_case

    reference = load_case(case)
    image = to_canonical(read_image(str(reference.image_path)))
    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    grid = Grid(tuple(image.GetOrigin()), tuple(image.GetSpacing()), hu.shape)
    film, geometry = lateral_drr(hu, grid, pixel_mm=pixel_mm, sid_mm=sid_mm)
    if look_seed is not None:
        film = clinical_appearance(film, pixel_mm, seed=int(look_seed))
    centroids = {v.label: geometry.project(np.asarray(v.centroid, dtype=np.float64)) for v in reference.vertebrae}
    return RealFilm(case=case, image=np.ascontiguousarray(film, dtype=np.float32), pixel_mm=float(pixel_mm),
                    centroids=centroids, fractured={v.label: bool(v.looks_fractured) for v in reference.vertebrae},
                    in_view={v.label: v.in_view for v in reference.vertebrae})
