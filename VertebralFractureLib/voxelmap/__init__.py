"""3D voxel fracture map with vertebra- and patient-level aggregation (Nicolaes et al. 2019).

Modules:
    network_constants: class names, margins, variants (no torch).
    network: the 11-layer dual-pathway 3D CNN of Nicolaes et al. 2019, §3.2, and its Table 1 variants.
    band_grid: the band grid around the spine centre-line, CT resampling and intensity scaling.
    inference: :func:`fracture_map` (CT + centre-line -> p(fracture) image).
    aggregate: vertebra scores (Gaussian-weighted cube) and patient score (components), ROC hull (§3.3, §4).
    stage: :class:`VoxelMapStage`, the analysis stage.

Training and evaluation: :mod:`VertebralFractureLib.training.voxelmap`. Torch is imported only inside
:mod:`network` and when a map is computed.
"""

from .aggregate import PatientScore, patient_score, vertebra_scores


def fracture_map(*args, **kwargs):
    """Voxel fracture map (Nicolaes et al. 2019, §3.2); see :func:`.inference.fracture_map`."""
    from .inference import fracture_map as _fracture_map

    return _fracture_map(*args, **kwargs)


__all__ = ["PatientScore", "fracture_map", "patient_score", "vertebra_scores"]
