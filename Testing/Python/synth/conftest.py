"""Shared fixtures for the synthetic generator tests: generated cases and the real samples."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
REAL_LOCATIONS = (REPO / "Testing" / "Data" / "real", REPO.parent / "shared" / "data" / "real")


def find_real(relative: str) -> Path:
    """A real sample file: Testing/Data/real/<relative>, else the shared copy; skip if neither exists."""
    for root in REAL_LOCATIONS:
        path = root / relative
        if path.exists():
            return path
    pytest.skip(f"real sample {relative} not found under {', '.join(str(r) for r in REAL_LOCATIONS)}")


@pytest.fixture(scope="session")
def real_file():
    """Factory fixture: ``real_file("verse/sub-verse004_seg-vert_msk.nii.gz")``."""
    return find_real


@pytest.fixture(scope="session")
def spine_case():
    """A thoraco-lumbar case at 2 mm with many fractures (shared by several tests)."""
    from VertebralFractureLib.synth import generate_case

    return generate_case(7, "spine", spacing=(2.0, 2.0, 2.0), fracture_prevalence=0.5)


@pytest.fixture(scope="session")
def fine_case():
    """A 1 mm case of the fast radiograph preset with fractures (no lungs: a flat DRR background; parallel beam)."""
    from VertebralFractureLib.synth import generate_case

    return generate_case(
        11, "radiograph", spacing=(2.0, 1.0, 1.0), fracture_prevalence=0.6, lungs=False, radiograph_sid_mm=0.0
    )
