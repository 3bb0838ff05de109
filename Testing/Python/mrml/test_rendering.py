"""Offscreen pictures of a result: a sagittal slice view with keypoints and grade-coloured segments, and a 3D view."""

import numpy as np
import pytest

from VertebralFractureLib.colors import GRADE_COLORS, to_uint8
from VertebralFractureLib.geometry import ImageGeometry


def _read_png(path):
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))[..., :3].astype(int)


def _pixels_near(image, rgb, tolerance=40):
    return int(np.sum(np.all(np.abs(image - np.array(rgb)) <= tolerance, axis=-1)))


def test_slice_and_3d_views_are_rendered(logic, spine_result, mrml_scene, tmp_path):
    pytest.importorskip("trame_slicer")
    from VertebralFractureLib.io.images import image_from_array
    from VertebralFractureLib.mrml.rendering import render_result
    from VertebralFractureLib.mrml.volumes import volume_from_array

    geometry = ImageGeometry((40, 40, 60), (2.0, 2.0, 3.0), (-40.0, -40.0, 40.0), np.eye(3))
    labels = np.zeros((60, 40, 40), np.uint8)
    labels[26:34, 12:28, 14:26], labels[16:24, 12:28, 14:26], labels[6:14, 12:28, 14:26] = 19, 20, 21
    ct = volume_from_array(np.where(labels > 0, 400, -50).astype(np.int16), geometry, scene=mrml_scene, name="CT")
    nodes = logic.show_result(spine_result, labels=image_from_array(labels, geometry), volume=ct, name="CT")

    written = render_result(nodes, tmp_path, size=(320, 320), level="L1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3d_view.png", "slice_view.png"]
    slice_view, threed = _read_png(written["slice"]), _read_png(written["3d"])
    assert slice_view.shape == threed.shape == (320, 320, 3)
    # the grade-2 L1 body (orange, blended over the CT) and the cyan keypoints show in the slice view
    assert _pixels_near(slice_view, to_uint8(GRADE_COLORS[2]), tolerance=90) > 200
    assert _pixels_near(slice_view, (102, 255, 255), tolerance=60) > 20
    # the 3D view shows the green grade-0 and orange grade-2 surfaces
    assert _pixels_near(threed, to_uint8(GRADE_COLORS[0]), tolerance=70) > 200
    assert _pixels_near(threed, to_uint8(GRADE_COLORS[2]), tolerance=70) > 200
    with pytest.raises(FileExistsError, match="slice_view.png exists; refusing to overwrite"):
        render_result(nodes, tmp_path, size=(64, 64))


def test_review_views_are_centred_on_the_vertebra(mrml_scene, tmp_path):
    pytest.importorskip("trame_slicer")
    from VertebralFractureLib.mrml.rendering import render_review_views
    from VertebralFractureLib.mrml.scenarios import _shown

    logic, nodes = _shown(mrml_scene, name="CT")
    logic.focus(nodes, "L1")
    path = render_review_views(nodes, tmp_path / "review.png", level="L1", size=(200, 200), field_of_view_mm=120.0)
    picture = _read_png(path)
    assert picture.shape == (200, 3 * 200 + 2 * 4, 3)
    orange = to_uint8(GRADE_COLORS[2])
    panels = [picture[:, i * 204: i * 204 + 200] for i in range(3)]
    for name, panel in zip(("axial", "sagittal", "coronal"), panels):
        # the grade-2 L1 body fills the middle of each view: the view is centred on it
        middle, corner = panel[70:130, 70:130], panel[:40, :40]
        assert _pixels_near(middle, orange, tolerance=90) > 150, name
        assert _pixels_near(corner, orange, tolerance=90) == 0, name
    with pytest.raises(FileExistsError, match="review.png exists"):
        render_review_views(nodes, path, level="L1")
