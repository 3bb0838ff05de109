"""3D voxel fracture map with vertebra- and patient-level aggregation (paper 002, Nicolaes et al. 2019).

Modules:
    network_constants: class names, margins, variants (no torch).
    network: the 11-layer dual-pathway 3D CNN of 002 §3.2 and the 002 Table 1 variants.
    grid: the band grid around the spine centre-line, CT resampling and intensity scaling.
    labels: training label images from sparse annotations (002 §3.1 ellipsoids).
    data: cached band-grid samples of generated or written cases.
    sampling: weighted segment sampling, noise and flip augmentation (002 §3.2).
    infer: :func:`fracture_map` (CT + centre-line -> p(fracture) image).
    aggregate: vertebra scores (Gaussian-weighted cube) and patient score (components), ROC hull (002 §3.3, §4).
    metrics: bootstrapped vertebra- and patient-level AUCs (002 §4).
    stage: :func:`stage_voxel_map`, the pipeline stage.
    train, evaluate: ``vertebral-fracture train|evaluate voxelmap``.

Torch is imported only inside :mod:`network` and when a map is computed.
"""

from .aggregate import PatientScore, patient_score, vertebra_scores
from .stage import stage_voxel_map


def fracture_map(*args, **kwargs):
    """002 §3.2 voxel fracture map; see :func:`VertebralFractureLib.voxelmap.infer.fracture_map`."""
    from .infer import fracture_map as _fracture_map

    return _fracture_map(*args, **kwargs)


__all__ = ["PatientScore", "fracture_map", "patient_score", "stage_voxel_map", "vertebra_scores"]
