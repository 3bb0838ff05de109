"""Sacral anchor on held-out generated spines with a realistic sacrum, read as sagittal CT slices and as films.

Each held-out spine (``generate_case(seed, "abdomen", sacrum="curved", bottom_level="L5")``, seeds from 910000, never
trained on: the lumbosacral classifier trains on 300000-300299) is analysed by the 2D path twice: its mid-sagittal CT
slice (written as a 2D NIfTI with its pixel size, as ``covid_sagittal``'s slices are) and its lateral DRR
(``--look``: with a clinical radiograph's look). Reported per picture: whether the sacrum anchored the levels, whether
the levels were then right (every reported body within 10 mm of a true one whose level is certain carries its true
level; "WRONG": a certain level is wrong), the lumbar levels right over the true L1-L5 bodies (uncertain levels
count as not right), and whether S1 (the generator's S1 keypoints, the segment the count rests on) was reported as
S1 with a certain level.

The real figures are ``benchmarks/bench_sagittal.py`` (real sagittal CT slices) and ``benchmarks/bench_real_drr.py``
(films of real CTs); report them beside these.

    OMP_NUM_THREADS=2 python benchmarks/bench_lumbosacral.py --count 24
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: First held-out seed.
FIRST_SEED = 910000
#: A reported body within this many mm of a true body is matched to it.
MATCH_MM = 10.0


def _slice_picture(case, folder: Path):
    """``(path, truth, pixel mm)``: the mid-sagittal CT slice as a 2D NIfTI and ``{level: [column, row]}`` on it."""
    import SimpleITK as sitk

    from VertebralFractureLib.training.radiograph.train_lumbosacral import sagittal_slice

    plane, pixel_mm, to_pixels = sagittal_slice(case)
    image = sitk.GetImageFromArray(plane.astype(np.int16))
    image.SetSpacing(pixel_mm)
    path = folder / f"slice_{case.seed}.nii.gz"
    sitk.WriteImage(image, str(path))
    truth = {v.label: to_pixels(v.centroid)[0] for v in case.truth.vertebrae}
    s1 = case.truth.input["synthetic"].get("s1_keypoints_lps")
    if s1 is not None:
        truth["S1"] = to_pixels(np.asarray(s1, dtype=float).reshape(6, 3)).mean(axis=0)
    return path, truth, pixel_mm[0]


def _film_picture(case, look: bool):
    """``(image, truth, pixel mm)``: the DRR (with a clinical look when asked) and ``{level: [column, row]}``."""
    film = case.radiograph_truth
    pixel_mm = float(film.pixel_spacing[0])
    image = case.radiograph
    if look:
        from VertebralFractureLib.training.radiograph.appearance import clinical_appearance

        image = clinical_appearance(image, pixel_mm, np.random.default_rng([case.seed, 5]))
    truth = {v.label: np.asarray(v.centroid[:2], dtype=float) for v in film.vertebrae}
    s1 = film.input.get("s1_keypoints_px")
    if s1 is not None:
        truth["S1"] = np.asarray(s1, dtype=float).reshape(6, 2).mean(axis=0)
    return image, truth, pixel_mm


def score(analysis, truth: Dict[str, np.ndarray], pixel_mm: float) -> Dict[str, object]:
    """Anchor given, levels right, lumbar levels right (of the true L1-L5) for one analysed picture."""
    result = analysis.result
    levels = result.patient.get("levels", {})
    certain = bool(levels.get("certain"))
    anchor = levels.get("anchor") == "sacrum"
    pairs = []
    for v in result.vertebrae:
        centre = np.asarray(v.centroid[:2], dtype=float)
        nearest = min(truth, key=lambda name: float(np.linalg.norm(truth[name] - centre)))
        if np.linalg.norm(truth[nearest] - centre) * pixel_mm <= MATCH_MM:
            pairs.append((v.label, nearest, bool(v.extra.get("level_certain", certain))))
    sure = [(reported, true) for reported, true, own in pairs if certain and own]
    wrong = any(reported != true for reported, true in sure)
    lumbar = [name for name in truth if name.startswith("L")]
    lumbar_right = sum(1 for reported, true in sure if true in lumbar and reported == true)
    s1_right = any(reported == "S1" and true == "S1" for reported, true in sure)
    return {"anchor": anchor, "certain": certain, "right": bool(sure) and not wrong, "wrong": wrong,
            "lumbar": len(lumbar), "lumbar_right": lumbar_right, "s1": int("S1" in truth), "s1_right": int(s1_right),
            "reason": str(levels.get("reason") or "")}


def main(argv: List[str] = None) -> int:
    """Run the held-out spines and print one line per picture and the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument("--look", action="store_true", help="films with a clinical radiograph's look")
    args = parser.parse_args(argv)
    from VertebralFractureLib.radiograph.analyze import analyze_radiograph
    from VertebralFractureLib.synth import generate_case

    counted = ("anchor", "right", "wrong", "lumbar", "lumbar_right", "s1", "s1_right")
    totals = {kind: {"pictures": 0, **dict.fromkeys(counted, 0)} for kind in ("slice", "film")}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.first_seed, args.first_seed + args.count):
            case = generate_case(seed, "abdomen", sacrum="curved", bottom_level="L5", fov_xy_mm=(320.0, 320.0),
                                 radiograph_sid_mm=None)
            path, truth, pixel_mm = _slice_picture(case, Path(folder))
            pictures = [("slice", analyze_radiograph(path), truth, pixel_mm)]
            image, film_truth, film_mm = _film_picture(case, args.look)
            pictures.append(("film", analyze_radiograph(image, pixel_spacing=(film_mm, film_mm)), film_truth, film_mm))
            for kind, analysis, centres, mm in pictures:
                s = score(analysis, centres, mm)
                total = totals[kind]
                total["pictures"] += 1
                for key in counted:
                    total[key] += int(s[key])
                print(f"{seed} {kind:5s} anchor {'yes' if s['anchor'] else 'no '} levels "
                      f"{'right' if s['right'] else 'WRONG' if s['wrong'] else 'uncertain'} lumbar "
                      f"{s['lumbar_right']}/{s['lumbar']} S1 {'right' if s['s1_right'] else '-'}  "
                      f"{s['reason'][:100]}", flush=True)
    for kind, t in totals.items():
        print(f"TOTAL {kind}: {t['pictures']} pictures, sacral anchor {t['anchor']}, levels right {t['right']}, "
              f"confident wrong levels {t['wrong']}, lumbar levels right {t['lumbar_right']}/{t['lumbar']}, "
              f"S1 reported and right {t['s1_right']}/{t['s1']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
