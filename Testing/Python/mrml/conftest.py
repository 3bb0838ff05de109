"""Fixtures of the MRML bridge tests: one small synthetic case per session, shown as an Analysis."""

from __future__ import annotations

import pytest
from mrml.helpers import analysis_of, small_case


@pytest.fixture(scope="session")
def case():
    """The session's small synthetic case (``ct``, ``truth``, ``body_mask``)."""
    return small_case()


@pytest.fixture
def logic(mrml_scene):
    """The module logic on a fresh scene."""
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic

    return VertebralFractureLogic(mrml_scene)


@pytest.fixture
def ct_volume(case, mrml_scene):
    """The case's CT as a volume node."""
    from VertebralFractureLib.mrml.volumes import volume_from_image

    return volume_from_image(case.ct, scene=mrml_scene, name="CT")


@pytest.fixture
def shown(case, logic, ct_volume):
    """The case's analysis shown in the scene (ResultNodes)."""
    return logic.show_analysis(analysis_of(case), volume=ct_volume, name="CT")
