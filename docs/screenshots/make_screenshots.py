"""Make the module screenshots: ``slice_view.png`` and ``3d_view.png`` in this folder.

A synthetic thoraco-lumbar case with fractures, shown by the module logic over its CT (keypoints,
centroids, grade-coloured vertebral bodies), rendered by real Slicer views offscreen
(:func:`VertebralFractureLib.mrml.rendering.render_result`). Usage::

    python docs/screenshots/make_screenshots.py [--seed 1] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
HERE = Path(__file__).resolve().parent


def main(argv=None) -> None:
    """Generate the case, show it, render the views."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--size", type=int, default=640)
    args = parser.parse_args(argv)

    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.rendering import render_result
    from VertebralFractureLib.mrml.scene import create_scene
    from VertebralFractureLib.mrml.volumes import volume_from_image
    from VertebralFractureLib.pipeline import Analysis
    from VertebralFractureLib.synth import generate_case

    case = generate_case(
        args.seed,
        "abdomen",
        spacing=(1.5, 1.5, 1.5),
        fov_xy_mm=(160.0, 140.0),
        radiograph=False,
        ribs=False,
        lungs=False,
        fracture_prevalence=0.4,
        scoliosis_deg=0.0,
    )
    scene = create_scene()
    volume = volume_from_image(case.ct, scene=scene, name="CT")
    logic = VertebralFractureLogic(scene)
    nodes = logic.show_analysis(Analysis(result=case.truth, image=case.ct, labels=case.body_mask), volume=volume)
    fractured = [v.label for v in case.truth.vertebrae if v.measure.grade > 0]
    written = render_result(
        nodes, args.out, size=(args.size, args.size), level=fractured[0] if fractured else "", overwrite=True
    )
    print(nodes.summary.GetText())
    for path in written.values():
        print(path)


if __name__ == "__main__":
    main()
