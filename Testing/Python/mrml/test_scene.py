import pytest


def test_scene_has_app_logic_singletons_and_module_logics(mrml_scene):
    from VertebralFractureLib.mrml.scene import scene_logics

    assert mrml_scene.GetNodeByID("vtkMRMLSelectionNodeSingleton") is not None
    assert mrml_scene.GetNodeByID("vtkMRMLInteractionNodeSingleton") is not None
    logics = scene_logics(mrml_scene)
    for name in ("Colors", "Volumes", "Markups", "Segmentations", "SubjectHierarchy", "Tables"):
        assert logics[name] is not None
        assert logics["ApplicationLogic"].GetModuleLogic(name) is logics[name]
    assert mrml_scene.GetFirstNodeByName("Grey") is not None


def test_markups_logic_works_without_selection_errors(mrml_scene):
    from VertebralFractureLib.mrml.scene import scene_logics

    node = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "F")
    node.AddControlPoint([1.0, 2.0, 3.0], "p")
    scene_logics(mrml_scene)["Markups"].SetActiveList(node)
    selection = mrml_scene.GetNodeByID("vtkMRMLSelectionNodeSingleton")
    assert selection.GetActivePlaceNodeID() == node.GetID()


def test_resolve_scene_needs_a_scene_outside_slicer(slicer_core):
    from VertebralFractureLib.mrml.scene import resolve_scene

    if hasattr(slicer_core, "mrmlScene"):
        pytest.skip("inside the Slicer application slicer.mrmlScene is the default")
    with pytest.raises(ValueError, match="create_scene"):
        resolve_scene(None)


def test_offscreen_rendering_is_selected():
    import os

    assert os.environ.get("VTK_DEFAULT_OPENGL_WINDOW") == "vtkEGLRenderWindow"
