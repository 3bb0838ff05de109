"""The MRML bridge: result objects, images and masks <-> Slicer scene nodes.

The only part of the library that imports ``slicer`` / ``vtk``. Every function takes the scene
as an argument (``slicer.mrmlScene`` is used only when it exists and no scene is given) and reads
and writes files through storage nodes, so all of it runs in plain Python with slicer-core.

Modules:
    scene: :func:`create_scene` - a scene with application and module logics, outside Slicer.
    volumes: volume nodes <-> SimpleITK images / arrays with full geometry.
    markups: SpineResult <-> keypoints and centroids markups nodes, .mrk.json through storage nodes.
    radiographs: lateral radiographs as one-slice volumes; 2D results (pixel frame) <-> RAS points.
    segmentations: label masks -> named, coloured segments; .seg.nrrd files.
    tables: the "Genant" table node.
    logic: the Qt-free logic of the Slicer module (run, show, refresh, navigate, save / load scene).
    results: the nodes of one result and the result node that keeps it (with history) in the scene.
    display: patient summary, segment colours and legend, straightened image, subject hierarchy.
    editing: live keypoint edits, relabel, add and delete vertebrae, all recorded in the history.
    exchange: export / import of annotations (project JSON, VerSe centroids, CSV, .mrk.json).
    bundle: .mrb scene bundles saved and loaded outside the application.
    rendering: offscreen slice and 3D views written as PNG.
    scenarios: the module's self-test scenarios (run in Slicer and by pytest).

Sub-modules are imported on use (``from VertebralFractureLib.mrml import volumes``), so importing
this package does not import slicer.
"""
