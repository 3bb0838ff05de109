import json

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from testdata import real

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.atomic import ExistingFileError
from VertebralFractureLib.io.images import geometry_of
from VertebralFractureLib.io.verse import (
    VerseFormatError,
    centroids_from_mask,
    check_axes,
    mask_levels,
    read_verse_centroids,
    read_verse_mask,
    reference_geometry,
    reoriented_geometry,
    write_verse_centroids,
    write_verse_mask,
)

MASK = real("verse", "sub-verse004_seg-vert_msk.nii.gz")
CTD = real("verse", "sub-verse004_seg-subreg_ctd.json")


def rotation(angles):
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


@pytest.fixture(scope="module")
def mask():
    return read_verse_mask(MASK)


def test_real_centroids_fall_inside_their_own_label(mask):
    centroids = read_verse_centroids(CTD, MASK)
    assert list(centroids) == ["T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    geometry = geometry_of(mask)
    array = sitk.GetArrayViewFromImage(mask)
    for level, point in centroids.items():
        i, j, k = np.round(geometry.lps_to_index(point)).astype(int)
        assert array[k, j, i] == list(centroids).index(level) + 16  # T9 = 16 ... L5 = 24
    assert mask_levels(mask) == list(centroids)


def test_real_centroids_are_voxel_indices_of_pir_grid(mask):
    # the mask is stored PIR, so X, Y, Z are plain indices i, j, k of the file
    centroids = read_verse_centroids(CTD, mask)
    geometry = geometry_of(mask)
    assert geometry.orientation_code == "PIR"
    np.testing.assert_allclose(geometry.lps_to_index(centroids["L1"]), [63.2, 141.9, 31.8], atol=1e-9)
    # vertebral-body centroids are anterior of the whole-vertebra centre of mass, within 2 cm
    whole = centroids_from_mask(mask)
    for level in centroids:
        assert 5 < np.linalg.norm(whole[level] - centroids[level]) < 20
        assert whole[level][1] > centroids[level][1]  # more posterior (LPS y)


def test_real_centroids_same_through_a_reoriented_reference(mask):
    ras = sitk.DICOMOrient(mask, "RAS")
    direct = read_verse_centroids(CTD, mask)
    via_ras = read_verse_centroids(CTD, ras)
    for level in direct:
        np.testing.assert_allclose(via_ras[level], direct[level], atol=1e-6)


def test_centroids_from_real_mask_are_cranio_caudal(mask):
    centroids = centroids_from_mask(mask)
    assert list(centroids) == mask_levels(mask)
    z = [p[2] for p in centroids.values()]
    assert all(a > b for a, b in zip(z, z[1:]))  # LPS z decreases going caudally
    only = centroids_from_mask(mask, labels=["L1", 24])
    assert list(only) == ["L1", "L5"]
    np.testing.assert_allclose(only["L1"], centroids["L1"])


def test_centroids_from_mask_exact_on_synthetic_blocks(tmp_path):
    geometry = ImageGeometry((10, 12, 14), (0.5, 1.0, 2.0), (3.0, -2.0, 7.0), rotation((0.2, -0.1, 0.3)))
    array = np.zeros((14, 12, 10), np.uint8)
    array[2:4, 3:7, 1:3] = 20  # k 2-3, j 3-6, i 1-2 -> centre (1.5, 4.5, 2.5)
    array[8:13, 0:2, 5:10] = 28
    path = write_verse_mask(array, tmp_path / "mask.nii.gz", geometry)
    centroids = centroids_from_mask(path)
    assert list(centroids) == ["T13", "L1"]
    np.testing.assert_allclose(centroids["L1"], geometry.index_to_lps([1.5, 4.5, 2.5]), atol=1e-4)
    np.testing.assert_allclose(centroids["T13"], geometry.index_to_lps([7.0, 0.5, 10.0]), atol=1e-4)
    assert read_verse_mask(path).GetPixelID() == sitk.sitkUInt8


@pytest.mark.parametrize("code", ["RAS", "LPS", "PIR", "ASL", "SLP", "IRA"])
def test_reoriented_geometry_matches_dicomorient(mask, code):
    expected = geometry_of(sitk.DICOMOrient(mask, code))
    got = reoriented_geometry(geometry_of(mask), tuple(code))
    assert got.same_grid(expected, tolerance=1e-5)
    assert got.orientation_code == code


@settings(max_examples=40, deadline=None)
@given(
    angles=st.tuples(*[st.floats(-0.6, 0.6)] * 3),
    axes=st.permutations(["P", "I", "R"]).map(tuple),
    flips=st.tuples(*[st.booleans()] * 3),
    points=st.lists(st.tuples(*[st.floats(-200, 200)] * 3), min_size=1, max_size=5),
)
def test_write_read_round_trip(tmp_path_factory, angles, axes, flips, points):
    opposite = {"P": "A", "I": "S", "R": "L"}
    axes = tuple(opposite[a] if f else a for a, f in zip(axes, flips))
    geometry = ImageGeometry((50, 60, 70), (0.7, 1.1, 2.5), (10.0, -20.0, 30.0), rotation(angles))
    levels = ["T1", "T13", "L1", "L6", "S1"][: len(points)]
    centroids = {level: np.array(p) for level, p in zip(levels, points)}
    path = tmp_path_factory.mktemp("ctd") / "ctd.json"
    write_verse_centroids(path, centroids, geometry, axes)
    document = json.loads(path.read_text())
    assert document[0] == {"direction": list(axes)}
    back = read_verse_centroids(path, geometry)
    assert set(back) == set(levels)
    for level in levels:
        np.testing.assert_allclose(back[level], centroids[level], atol=1e-9)


def test_written_file_uses_verse_labels_and_order(tmp_path):
    geometry = ImageGeometry((10, 10, 10), (1, 1, 1), (0, 0, 0), np.eye(3))
    path = write_verse_centroids(tmp_path / "c.json", {"L1": [1, 2, 3], 28: [0, 0, 9], "Th7": [5, 5, 5]}, geometry)
    document = json.loads(path.read_text())
    assert [e["label"] for e in document[1:]] == [14, 28, 20]
    # identity LPS grid -> PIR: X = j (posterior), Y = size-1-k (inferior), Z = size-1-i (right)
    assert document[3] == {"label": 20, "X": 2.0, "Y": 6.0, "Z": 8.0}
    with pytest.raises(ExistingFileError, match=r"c\.json exists; refusing to overwrite"):
        write_verse_centroids(path, {"L1": [1, 2, 3]}, geometry)
    write_verse_centroids(path, {"L2": [1, 2, 3]}, geometry, decimals=1, overwrite=True)
    assert list(read_verse_centroids(path, geometry)) == ["L2"]


def write_json(path, document):
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    "document, message",
    [
        ([{"direction": ["P", "I", "R"]}, {"label": 27, "X": 1, "Y": 2, "Z": 3}], "unknown VerSe vertebra label 27"),
        (
            [
                {"direction": ["P", "I", "R"]},
                {"label": 20, "X": 1, "Y": 2, "Z": 3},
                {"label": 20, "X": 1, "Y": 2, "Z": 4},
            ],
            "duplicate label 20",
        ),
        ([{"direction": ["P", "I", "R"]}, {"label": 20, "X": 1, "Z": 3}], "missing the coordinate 'Y'"),
        ([{"direction": ["P", "I", "R"]}, {"label": 20, "X": 1, "Y": "a", "Z": 3}], "must be a number"),
        ([{"direction": ["P", "I", "R"]}, {"label": 20, "X": 1, "Y": float("nan"), "Z": 3}], "not finite"),
        ([{"direction": ["P", "I", "R"]}, {"label": 20.5, "X": 1, "Y": 1, "Z": 3}], "integer VerSe label"),
        ([{"direction": ["P", "I", "R"]}, {"X": 1, "Y": 1, "Z": 3}], "missing 'label'"),
        ([{"direction": ["P", "I", "R"]}, [20, 1, 2, 3]], "expected an object"),
        ([{"direction": ["P", "I", "X"]}], "axis letters"),
        ([{"direction": ["P", "A", "R"]}], "same patient axis twice"),
        ([{"direction": ["P", "I"]}], "axis letters"),
        ([{"label": 20, "X": 1, "Y": 2, "Z": 3}], "first entry must give the axis codes"),
        ([], "non-empty JSON list"),
        ({"direction": ["P", "I", "R"]}, "non-empty JSON list"),
        ([{"direction": ["P", "I", "R"], "zoom": [1, 0, 1]}], "positive voxel sizes"),
    ],
)
def test_bad_centroid_files_name_file_and_entry(tmp_path, document, message):
    path = write_json(tmp_path / "bad_ctd.json", document)
    with pytest.raises(VerseFormatError, match=message) as info:
        read_verse_centroids(path, ImageGeometry((5, 5, 5), (1, 1, 1), (0, 0, 0), np.eye(3)))
    assert "bad_ctd.json" in str(info.value)


def test_truncated_and_missing_centroid_files(tmp_path):
    geometry = ImageGeometry((5, 5, 5), (1, 1, 1), (0, 0, 0), np.eye(3))
    truncated = tmp_path / "t.json"
    truncated.write_text(CTD.read_text()[:60])
    with pytest.raises(VerseFormatError, match="not valid JSON"):
        read_verse_centroids(truncated, geometry)
    with pytest.raises(VerseFormatError, match="no such file"):
        read_verse_centroids(tmp_path / "none.json", geometry)


def test_zoom_rescales_indices(tmp_path):
    geometry = ImageGeometry((20, 20, 20), (2.0, 2.0, 2.0), (0, 0, 0), np.eye(3))
    path = write_json(
        tmp_path / "z.json",
        [{"direction": ["L", "P", "S"], "zoom": [1, 1, 1]}, {"label": 20, "X": 4.0, "Y": 6.0, "Z": 8.0}],
    )
    np.testing.assert_allclose(read_verse_centroids(path, geometry)["L1"], [4.0, 6.0, 8.0])


def test_write_errors():
    geometry = ImageGeometry((5, 5, 5), (1, 1, 1), (0, 0, 0), np.eye(3))
    with pytest.raises(VerseFormatError, match="unknown"):
        write_verse_centroids("unused.json", {"X9": [0, 0, 0]}, geometry)
    with pytest.raises(VerseFormatError, match="duplicate level L1"):
        write_verse_centroids("unused.json", {"L1": [0, 0, 0], 20: [1, 1, 1]}, geometry)
    with pytest.raises(VerseFormatError, match="finite"):
        write_verse_centroids("unused.json", {"L1": [0, np.inf, 0]}, geometry)
    with pytest.raises(VerseFormatError, match="axis letters"):
        write_verse_centroids("unused.json", {"L1": [0, 0, 0]}, geometry, axes=("P", "I", "Q"))


def test_masks_with_non_vertebra_values_are_rejected(tmp_path):
    geometry = ImageGeometry((4, 4, 4), (1, 1, 1), (0, 0, 0), np.eye(3))
    array = np.zeros((4, 4, 4), np.uint8)
    array[0, 0, 0] = 27
    with pytest.raises(VerseFormatError, match="27"):
        write_verse_mask(array, tmp_path / "m.nii.gz", geometry)
    subregions = real("tptbox", "sub-ct_seg-subreg_label-22_msk.nii.gz")
    with pytest.raises(VerseFormatError, match="unknown VerSe vertebra label 4[1-9]|50"):
        read_verse_mask(subregions)
    tptbox = read_verse_mask(real("tptbox", "sub-ct_seg-vert_label-22_msk.nii.gz"))
    assert mask_levels(tptbox) == ["L2", "L3", "L4"]
    with pytest.raises(VerseFormatError, match="needs its ImageGeometry"):
        write_verse_mask(array, tmp_path / "m2.nii.gz")


def test_check_axes_and_reference_geometry(mask):
    assert check_axes("pir") == ("P", "I", "R")
    assert reference_geometry(MASK).same_grid(geometry_of(mask))
    assert reference_geometry(str(MASK)).same_grid(geometry_of(mask))
    with pytest.raises(TypeError, match="expected an ImageGeometry, a SimpleITK image or an image path, got int"):
        reference_geometry(42)
