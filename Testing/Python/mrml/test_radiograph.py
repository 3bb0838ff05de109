"""Lateral radiographs in the module: 2D results on a one-slice volume, edits, the radiograph run, export."""

import json

import numpy as np
import pytest
from mrml.helpers import DicomDatabase

from VertebralFractureLib.schema import SpineResult

SPACING = (0.8, 0.9)  # (column mm, row mm): anisotropic, so a swapped axis shows


@pytest.fixture(scope="module")
def radiograph_case():
    from VertebralFractureLib.synth import generate_case

    return generate_case(3, "radiograph")


@pytest.fixture
def truth(radiograph_case):
    """The case's true 2D result with an anisotropic pixel spacing."""
    return SpineResult.from_dict({**radiograph_case.radiograph_truth.to_dict(), "pixel_spacing": list(SPACING)})


@pytest.fixture
def shown(logic, radiograph_case, truth):
    return logic.show_result(truth, radiograph=radiograph_case.radiograph, name="XR")


def _keypoints_ras(node):
    points = np.zeros((node.GetNumberOfControlPoints(), 3))
    for index in range(len(points)):
        node.GetNthControlPointPosition(index, points[index])
    return points


def test_radiograph_volume_maps_pixels_to_the_sagittal_plane(mrml_scene, radiograph_case):
    from VertebralFractureLib.mrml.radiographs import (
        is_radiograph_volume,
        radiograph_array,
        radiograph_volume,
        volume_pixel_spacing,
        volume_pixel_to_ras,
    )

    node = radiograph_volume(radiograph_case.radiograph, SPACING, scene=mrml_scene, name="XR")
    matrix = volume_pixel_to_ras(node)
    # pixel (column 10, row 20): 8 mm posterior (RAS -y), 18 mm inferior (RAS -z), on x = 0
    np.testing.assert_allclose(matrix @ [10.0, 20.0, 0.0, 1.0], [0.0, -8.0, -18.0, 1.0], atol=1e-9)
    assert is_radiograph_volume(node)
    assert volume_pixel_spacing(node) == pytest.approx(SPACING)
    np.testing.assert_array_equal(radiograph_array(node), radiograph_case.radiograph)


def test_2d_result_shown_on_the_radiograph(shown, truth):
    from VertebralFractureLib.mrml.radiographs import volume_pixel_to_ras
    from VertebralFractureLib.mrml.tables import table_rows

    assert shown.volume is not None and shown.volume.GetImageData().GetDimensions()[2] == 1
    n = len(truth.vertebrae)
    assert shown.keypoints.GetNumberOfControlPoints() == 6 * n and shown.centroids.GetNumberOfControlPoints() == n
    ras = _keypoints_ras(shown.keypoints)
    expected = np.array([volume_pixel_to_ras(shown.volume) @ [c, r, 0.0, 1.0] for c, r in
                         np.concatenate([v.keypoints for v in truth.vertebrae])])[:, :3]
    np.testing.assert_allclose(ras, expected, atol=1e-6)
    assert shown.keypoints.GetNthControlPointDescription(0) == f"{truth.labels[0]}:0"
    rows = table_rows(shown.table)
    assert [r["Level"] for r in rows] == truth.labels
    for row, vertebra in zip(rows, truth.vertebrae):
        assert (row["ha"], row["hm"], row["hp"]) == pytest.approx(vertebra.measure.heights)
        assert row["G"] == pytest.approx(vertebra.measure.G)
    assert shown.summary.GetText().startswith(f"{n} vertebrae")
    shn = shown.volume.GetScene().GetSubjectHierarchyNode()
    assert shn.GetItemParent(shown.folder) == shn.GetItemByDataNode(shown.volume)


def test_round_trip_result_nodes_result_keeps_the_2d_points(shown, truth):
    from VertebralFractureLib.mrml.markups import result_from_markups_nodes

    back = result_from_markups_nodes(shown.keypoints, shown.centroids, template=truth)
    assert back.frame == "pixel" and back.pixel_spacing == pytest.approx(SPACING)
    assert back.labels == truth.labels
    for before, after in zip(truth.vertebrae, back.vertebrae):
        np.testing.assert_allclose(after.keypoints, before.keypoints, atol=1e-6)
        np.testing.assert_allclose(after.centroid, before.centroid, atol=1e-6)
        assert after.history == []
    stored = json.loads(shown.store.GetText())
    assert stored["frame"] == "pixel" and stored["pixel_spacing"] == pytest.approx(list(SPACING))


def test_moving_a_keypoint_recomputes_the_row(shown, truth):
    from VertebralFractureLib.mrml.tables import table_rows

    level = truth.labels[2]
    node = shown.keypoints
    keys = [node.GetNthControlPointDescription(i) for i in range(node.GetNumberOfControlPoints())]
    index = keys.index(f"{level}:0")  # anterior superior
    ras = np.zeros(3)
    shown.keypoints.GetNthControlPointPosition(index, ras)
    shown.keypoints.SetNthControlPointPosition(index, ras[0], ras[1], ras[2] - 2.7)  # 2.7 mm inferior = 3 rows
    vertebra = shown.result.vertebra(level)
    before = truth.vertebra(level)
    np.testing.assert_allclose(vertebra.keypoints[0], before.keypoints[0] + [0.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(vertebra.keypoints[1:], before.keypoints[1:], atol=1e-6)
    assert shown.result.frame == "pixel"
    assert vertebra.measure.heights[0] < before.measure.heights[0] - 2.0
    row = table_rows(shown.table)[2]
    assert row["ha"] == pytest.approx(vertebra.measure.heights[0]) and row["G"] == pytest.approx(vertebra.measure.G)
    assert [e.action for e in vertebra.history] == ["edit keypoints"]


def test_run_takes_a_radiograph_volume(logic, mrml_scene, radiograph_case):
    from VertebralFractureLib.levels import TYPICAL_LEVELS
    from VertebralFractureLib.mrml.radiographs import radiograph_volume
    from VertebralFractureLib.mrml.tables import table_rows

    volume = radiograph_volume(radiograph_case.radiograph, (1.0, 1.0), scene=mrml_scene, name="XR")
    messages = []
    nodes = logic.run(volume, progress=lambda fraction, message: messages.append(message))
    result = nodes.result
    assert result.frame == "pixel" and any("radiograph" in m or "levels" in m for m in messages)
    assert nodes.volume is volume and mrml_scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 1
    assert len(result.vertebrae) >= 3
    rows = table_rows(nodes.table)
    assert [r["Level"] for r in rows] == result.labels
    positions = [TYPICAL_LEVELS.index(level) for level in result.labels]
    assert positions == list(range(positions[0], positions[0] + len(positions)))  # consecutive levels
    assessed = [row for row in rows if row["Status"] == "assessed"]
    assert len(assessed) >= 3
    for row in assessed:
        assert 10.0 < row["ha"] < 50.0 and 10.0 < row["hm"] < 50.0 and 10.0 < row["hp"] < 50.0
        assert 0.0 < row["G"] <= 1.0
    for row in rows:
        assert row["Status"] == "assessed" or (row["Reason"] and row["Grade"] == -1), row
    assert nodes.keypoints.GetNumberOfControlPoints() == 6 * len(rows)
    # the keypoints lie on the radiograph's plane (x = 0), inside the image
    ras = _keypoints_ras(nodes.keypoints)
    assert np.abs(ras[:, 0]).max() < 1e-6
    rows_px, columns_px = radiograph_case.radiograph.shape
    assert (-ras[:, 1]).min() > -5 and (-ras[:, 1]).max() < columns_px + 5
    assert (-ras[:, 2]).min() > -5 and (-ras[:, 2]).max() < rows_px + 5


def test_export_import_2d_annotations_and_markups(logic, shown, truth, tmp_path):
    from VertebralFractureLib.io.mrk_json import read_result_markups
    from VertebralFractureLib.mrml.radiographs import volume_pixel_to_ras

    written = logic.export_annotations(shown, tmp_path / "xr.json")
    again = logic.import_annotations(written[0], volume=shown.volume, name="again")
    assert again.result.frame == "pixel" and again.result.pixel_spacing == pytest.approx(SPACING)
    for before, after in zip(truth.vertebrae, again.result.vertebrae):
        np.testing.assert_allclose(after.keypoints, before.keypoints, atol=1e-6)

    # .mrk.json: the points as the scene shows them, in the radiograph volume's physical LPS frame
    keypoints_file, centroids_file = logic.export_annotations(shown, tmp_path / "xr.mrk.json")
    assert centroids_file.name == "xr_centroids.mrk.json"
    document = json.loads(keypoints_file.read_text())
    assert document["markups"][0]["coordinateSystem"] == "LPS"
    physical = read_result_markups(keypoints_file, centroids_file)
    first = truth.vertebrae[0].keypoints[0]
    expected_ras = volume_pixel_to_ras(shown.volume) @ [first[0], first[1], 0.0, 1.0]
    np.testing.assert_allclose(physical.vertebrae[0].keypoints[0], expected_ras[:3] * [-1, -1, 1], atol=1e-4)
    back = logic.read_annotations_file(keypoints_file, volume=shown.volume)
    assert back.frame == "pixel" and back.labels == truth.labels
    for before, after in zip(truth.vertebrae, back.vertebrae):
        np.testing.assert_allclose(after.keypoints, before.keypoints, atol=1e-4)  # file precision
    assert back.vertebra(truth.labels[0]).measure.G == pytest.approx(truth.vertebrae[0].measure.G, abs=1e-5)


def test_verse_export_of_a_2d_result_is_refused(logic, shown, tmp_path):
    with pytest.raises(ValueError, match="radiograph"):
        logic.export_annotations(shown, tmp_path / "xr_ctd.json")
    assert not (tmp_path / "xr_ctd.json").exists()


def test_scene_bundle_keeps_the_2d_result_editable(logic, shown, truth, tmp_path):
    path = tmp_path / "xr.mrb"
    logic.save_scene(path, [shown])
    loaded = logic.load_scene(path)
    assert len(loaded) == 1
    nodes = loaded[0]
    assert nodes.result.frame == "pixel" and nodes.result.labels == truth.labels
    np.testing.assert_allclose(nodes.result.vertebrae[1].keypoints, truth.vertebrae[1].keypoints, atol=1e-6)
    np.testing.assert_allclose(logic.row_position(nodes, 1)[0], 0.0, atol=1e-9)


def test_run_passes_the_radiograph_and_its_spacing(mrml_scene, radiograph_case, truth):
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.radiographs import radiograph_volume
    from VertebralFractureLib.pipeline import Analysis
    from VertebralFractureLib.progress import Cancelled

    calls, models = [], []

    def analyze_radiograph(image, progress, pixel_spacing=None, **options):
        calls.append((image.shape, float(image[5, 7]), pixel_spacing))
        models.append(options.get("fracture_model"))
        progress(0.5, "half way")
        return Analysis(result=SpineResult.from_json(truth.to_json()), image=image)

    volume = radiograph_volume(radiograph_case.radiograph, SPACING, scene=mrml_scene, name="film")
    logic = VertebralFractureLogic(mrml_scene, analyze_radiograph=analyze_radiograph)
    count = mrml_scene.GetNumberOfNodes()
    with pytest.raises(Cancelled, match="analysis cancelled"):
        logic.run(volume, progress=lambda fraction, message: logic.cancel())
    assert mrml_scene.GetNumberOfNodes() == count  # a cancelled run adds nothing
    nodes = logic.run(volume, voxel_map=True)
    assert calls[-1] == (radiograph_case.radiograph.shape, pytest.approx(float(radiograph_case.radiograph[5, 7])),
                         pytest.approx(SPACING))
    assert nodes.result.input["path"] == "film" and nodes.volume is volume
    assert nodes.warnings[-1] == "not used for a radiograph (CT only): the voxel fracture map"
    assert nodes.table.GetNumberOfRows() == len(truth.vertebrae)
    assert logic.run_radiograph(volume, pixel_spacing=(0.5, 0.5)).result.input["path"] == "film"
    assert calls[-1][2] == (0.5, 0.5)
    # the fracture classifier has a lateral-view form: on by default, off when unticked, and no "CT only" warning
    assert models[-1] is None and not any("classifier" in w for w in nodes.warnings)
    logic.run(volume, fracture_classifier=False)
    assert models[-1] is False


def test_add_relabel_delete_on_a_radiograph(logic, mrml_scene, shown, truth):
    from VertebralFractureLib.levels import TYPICAL_LEVELS
    from VertebralFractureLib.mrml.radiographs import pixels_to_ras, volume_pixel_to_ras

    last = truth.vertebrae[-1]
    below = TYPICAL_LEVELS[TYPICAL_LEVELS.index(last.label) + 1]
    pixels = last.keypoints + [0.0, 30.0]  # a copy 30 rows lower
    placed = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "placed")
    for point in pixels_to_ras(pixels, volume_pixel_to_ras(shown.volume)):
        placed.AddControlPoint(point.tolist())
    added = logic.add_vertebra_from_markups(shown, below, placed)
    np.testing.assert_allclose(added.keypoints, pixels, atol=1e-6)
    assert added.measure.G == pytest.approx(last.measure.G) and shown.result.frame == "pixel"
    assert shown.keypoints.GetNumberOfControlPoints() == 6 * (len(truth.vertebrae) + 1)
    with pytest.raises(ValueError, match="2D keypoints"):
        logic.add_vertebra(shown, "S1", np.zeros((6, 4)))
    logic.relabel(shown, truth.labels[0], TYPICAL_LEVELS[TYPICAL_LEVELS.index(truth.labels[0]) + 1])
    assert shown.result.labels[0] == truth.labels[1] and shown.result.frame == "pixel"
    logic.delete_vertebra(shown, shown.result.labels[0])
    assert shown.table.GetNumberOfRows() == len(truth.vertebrae)
    assert shown.result.pixel_spacing == pytest.approx(SPACING)


def test_colour_picture_and_ct_volumes(mrml_scene, ct_volume):
    import slicer

    from VertebralFractureLib.mrml.radiographs import is_radiograph_volume, radiograph_array

    picture = mrml_scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "photo")
    pixels = np.zeros((1, 4, 5, 3), np.uint8)
    pixels[0, 1, 2] = [30, 60, 90]
    slicer.util.updateVolumeFromArray(picture, pixels)
    assert is_radiograph_volume(picture)
    grey = radiograph_array(picture)
    assert grey.shape == (4, 5) and grey[1, 2] == pytest.approx(60.0) and grey[0, 0] == 0.0
    assert not is_radiograph_volume(ct_volume) and not is_radiograph_volume(None)
    with pytest.raises(ValueError, match="not a single 2D image"):
        radiograph_array(ct_volume)


def test_a_body_placed_above_the_column_is_measured_once_a_reader_moves_it(logic, radiograph_case, truth):
    from VertebralFractureLib.mrml.tables import table_rows
    from VertebralFractureLib.radiograph.gate2d import REASONS

    level = truth.labels[2]
    withheld = SpineResult.from_json(truth.to_json())
    withheld.vertebra(level).not_assessed(REASONS["placed"])
    withheld.recompute()
    shown = logic.show_result(withheld, radiograph=radiograph_case.radiograph, name="XR")
    assert table_rows(shown.table)[2]["Grade"] == -1
    node = shown.keypoints
    index = [node.GetNthControlPointDescription(i) for i in range(node.GetNumberOfControlPoints())].index(f"{level}:0")
    ras = np.zeros(3)
    node.GetNthControlPointPosition(index, ras)
    node.SetNthControlPointPosition(index, ras[0], ras[1], ras[2] - 0.9)  # one row inferior
    vertebra = shown.result.vertebra(level)
    assert shown.result.frame == "pixel" and vertebra.assessed and vertebra.extra["keypoints_by"] == "reader"
    assert vertebra.measure.heights[0] == pytest.approx(truth.vertebra(level).measure.heights[0] - 0.9, abs=0.05)
    row = table_rows(shown.table)[2]
    assert (row["Status"], row["Grade"]) == ("assessed", vertebra.measure.grade) and row["Grade"] >= 0
    assert vertebra.extra["withheld_by_analysis"] == REASONS["placed"]


def _real_film_from_dicom(tmp_path, mrml_scene, pixels, spacing_mm, **header):
    """A real sagittal CT slice (``pixels``) written as a DX file with the header asked for, shown as Slicer's DICOM
    module loads it (a one-slice volume listing its instance's UID), and the database that finds the file."""
    import SimpleITK as sitk
    from testdata import write_dx

    from VertebralFractureLib.mrml.radiographs import radiograph_volume
    from VertebralFractureLib.mrml.volumes import DICOM_INSTANCES_ATTRIBUTE

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_dx(tmp_path / "film.dcm", pixel_spacing=(spacing_mm, spacing_mm), rows=pixels.shape[0],
                    cols=pixels.shape[1], pixels=pixels, **header)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    uid = reader.GetMetaData("0008|0018").strip("\0 ")
    node = radiograph_volume(pixels.astype(np.float32), (spacing_mm, spacing_mm), scene=mrml_scene, name="XR")
    node.SetAttribute(DICOM_INSTANCES_ATTRIBUTE, uid)
    return node, DicomDatabase({uid: str(path)})


def _real_slice(name):
    import SimpleITK as sitk
    from testdata import real

    entry = next(e for e in json.loads(real("reference", "covid_sagittal.json").read_text())["images"]
                 if name in e["image"])
    hu = sitk.GetArrayFromImage(sitk.ReadImage(str(real(entry["image"])))).squeeze()
    return np.clip(np.rint(hu + 1024.0), 0, 4095).astype(np.uint16), float(entry["spacing_mm"][0])


def test_a_film_loaded_from_dicom_is_read_with_its_header(tmp_path, mrml_scene):
    """Slicer's DICOM module gives the node the file's pixels without its header; the logic reads the header from the
    file the node's instance UID names. A film whose View Position is PA is refused in one line naming the node and
    the attribute, and nothing is added to the scene; a film facing right (Patient Orientation A\\F, the real slice
    mirrored) is analysed facing right without trying the other way, with the same levels as the slice as stored."""
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.radiograph.analyze import analyze_radiograph
    from VertebralFractureLib.validation import InputError

    pixels, spacing = _real_slice("A058062_19010108-077")
    frontal, database = _real_film_from_dicom(tmp_path / "a", mrml_scene, pixels, spacing, view_position="PA")
    logic = VertebralFractureLogic(mrml_scene, dicom_database=database)
    nodes_before = mrml_scene.GetNumberOfNodes()
    with pytest.raises(InputError) as refused:
        logic.run(frontal)
    assert str(refused.value).startswith("XR: a frontal (AP / PA) view (View Position (0018,5101) is 'PA')")
    assert mrml_scene.GetNumberOfNodes() == nodes_before
    # without the database the header is not found: the picture is analysed as a lateral one, as any picture is
    assert VertebralFractureLogic(mrml_scene).run(frontal).result.vertebrae

    mirrored = np.ascontiguousarray(pixels[:, ::-1])
    facing_right, database = _real_film_from_dicom(tmp_path / "b", mrml_scene, mirrored, spacing,
                                                   patient_orientation=("A", "F"))
    result = VertebralFractureLogic(mrml_scene, dicom_database=database).run(facing_right).result
    assert result.input["facing"] == "right"
    assert result.input["facing_source"] == "Patient Orientation (0020,0020)"
    assert result.input["view_plane"] == "lateral (Patient Orientation (0020,0020) is 'A\\F')"
    stored = analyze_radiograph(mirrored.astype(np.float32), pixel_spacing=(spacing, spacing)).result
    assert stored.input["facing_source"] == "image" and result.labels == stored.labels and "L5" in result.labels
