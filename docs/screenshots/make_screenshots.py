"""Make the module screenshots: ``slice_view.png``, ``3d_view.png`` and ``review_views.png`` in this folder.

``slice_view.png`` / ``3d_view.png``: a synthetic thoraco-lumbar case with fractures, shown by the
module logic over its CT (keypoints, centroids, grade-coloured vertebral bodies), rendered by real
Slicer views offscreen (:func:`VertebralFractureLib.mrml.rendering.render_result`).

``review_views.png``: the real analysis of the bundled sample CT (shipped weights, CPU), then the
review keys as a reader presses them (N: T12, A: accept, N: the next vertebra of the queue); the
three slice views as the module leaves them, centred on that vertebra
(:func:`VertebralFractureLib.mrml.rendering.render_review_views`). Only the views: the Qt panel
itself (queue list, buttons) needs the Slicer application. Usage::

    python docs/screenshots/make_screenshots.py [--seed 1] [--out docs/screenshots] [--no-review]
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
    parser.add_argument("--no-review", action="store_true", help="skip review_views.png (the real analysis)")
    args = parser.parse_args(argv)
    if not args.no_review:
        review_screenshot(args.out)

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


def review_screenshot(out: Path) -> Path:
    """``review_views.png``: the sample CT analysed, T12 accepted, the views on the next vertebra of the queue."""
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.rendering import render_review_views
    from VertebralFractureLib.mrml.scenarios import sample_volume
    from VertebralFractureLib.mrml.scene import create_scene

    scene = create_scene()
    logic = VertebralFractureLogic(scene)
    nodes = logic.run(sample_volume(scene), device="cpu")
    logic.reviewer = "reader"
    for action in ("next", "accept", "next"):
        print(f"{action}: {logic.key(nodes, action)}")
    for item in logic.review_queue(nodes):
        mark = f" [{item.decision} by {item.reviewer}]" if item.reviewed else ""
        print(f"  {item.label}  {item.need}: {item.reason}{mark}")
    path = render_review_views(nodes, Path(out) / "review_views.png", level=nodes.current, overwrite=True)
    print(path)
    return path


if __name__ == "__main__":
    main()
