"""The radiograph path on lateral films of real anatomy: projections of the real reference CTs.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_real_drr.py [--cases sample_ct cptac_chest] [--looks 3] [--out DIR]

Each real CT of the reference set is projected laterally (:func:`VertebralFractureLib.training.real.films.real_film`:
parallel beam and a point source at 1000 mm, 1 mm pixels), plain and with ``--looks`` clinical looks (seeds 0, 1,
...), each as given (patient facing left) and mirrored (facing right), and analysed by ``analyze_radiograph`` with
the pixel size given. A found vertebra is matched to the nearest projected reference centre within 12 mm. Per film:
bodies found / matched, whether the levels are certain (and by which anchor), levels right among the matched ones
when certain (a certain wrong level is the failure that matters), grade >= 2 on a body the reference does not call
fractured (or on no body), not assessed; a film where no vertebra is found is counted as such (the analysis exits
with a message). ``--out DIR`` draws each film with the reference (green) and the reported bodies.

These films are what the sagittal slices of ``benchmarks/bench_sagittal.py`` are not: projections, with the iliac
wings over the sacrum and the ribs and scapulae over the thoracic bodies.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MATCH_MM = 12.0


def score_film(film, mirror: bool = False, out: Optional[Path] = None, tag: str = "") -> Dict[str, object]:
    """Analyse one :class:`~VertebralFractureLib.training.real.films.RealFilm` and compare with its reference."""
    import numpy as np

    from VertebralFractureLib.radiograph.analyze import analyze_radiograph
    from VertebralFractureLib.validation import InputError

    image = film.image[:, ::-1] if mirror else film.image
    width = image.shape[1]
    truth = {label: (np.array([width - 1 - c[0], c[1]]) if mirror else np.asarray(c))
             for label, c in film.centroids.items()}
    score: Dict[str, object] = {"found": 0, "matched": 0, "certain": False, "anchor": None, "right": 0,
                                "confident_wrong": 0, "false_grade": 0, "not_assessed": 0, "message": "",
                                "pairs": []}
    try:
        result = analyze_radiograph(np.ascontiguousarray(image), pixel_spacing=(film.pixel_mm, film.pixel_mm)).result
    except InputError as error:
        score["message"] = str(error)
        return score
    levels = result.patient.get("levels", {})
    score["certain"] = bool(levels.get("certain"))
    score["anchor"] = levels.get("anchor")
    score["found"] = len(result.vertebrae)
    for vertebra in result.vertebrae:
        best, best_mm = None, MATCH_MM
        for label, centre in truth.items():
            distance = math.dist(np.asarray(vertebra.centroid, dtype=float), centre) * film.pixel_mm
            if distance < best_mm:
                best, best_mm = label, distance
        assessed = vertebra.status == "assessed"
        grade = vertebra.measure.grade if assessed and vertebra.measure is not None else None
        score["not_assessed"] += not assessed
        if best is not None:
            score["matched"] += 1
            certain = score["certain"] and vertebra.extra.get("level_certain", True)
            if certain:
                score["right"] += vertebra.label == best
                score["confident_wrong"] += vertebra.label != best
        if grade is not None and grade >= 2 and (best is None or not film.fractured.get(best, False)):
            score["false_grade"] += 1
        score["pairs"].append(f"{vertebra.label}={best or '-'}{'' if assessed else '(n)'}"
                              + (f"g{grade}" if grade else ""))
    if out is not None:
        _draw(image, truth, result, out / f"{tag}.png", f"{tag}: {levels.get('reason', '')}")
    return score


def _draw(image, truth: dict, result, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure = plt.figure(figsize=(6, 6 * image.shape[0] / image.shape[1]))
    plt.imshow(image, cmap="gray")
    for label, centre in truth.items():
        plt.plot(*centre, "o", mfc="none", color="lime")
        plt.text(centre[0] - 30, centre[1], label, color="lime", fontsize=7, clip_on=True)
    for vertebra in result.vertebrae:
        k = np.asarray(vertebra.keypoints, dtype=float).reshape(6, 2)[[0, 2, 4, 5, 3, 1, 0]]
        plt.plot(k[:, 0], k[:, 1], color="red" if vertebra.status == "assessed" else "orange", lw=0.8)
        plt.text(k[2, 0] + 3, k[2, 1], vertebra.label, color="yellow", fontsize=7, clip_on=True)
    plt.title(title[:110], fontsize=7)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: Optional[List[str]] = None) -> int:
    """Print one line per film and the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["sample_ct", "cptac_chest"])
    parser.add_argument("--looks", type=int, default=3, help="clinical looks per film (seeds 0 ...), besides plain")
    parser.add_argument("--out", type=Path, default=None, help="draw each film into this folder")
    args = parser.parse_args(argv)
    from VertebralFractureLib.training.real.films import FILM_SID_MM, real_film
    from VertebralFractureLib.training.real.reference import list_cases

    unknown = [case for case in args.cases if case not in list_cases()]
    if unknown:
        parser.error(f"no reference case {', '.join(unknown)} (cases: {', '.join(list_cases())})")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    keys = ("found", "matched", "right", "confident_wrong", "false_grade", "not_assessed")
    totals = dict.fromkeys(keys, 0)
    totals.update(films=0, no_vertebra=0, certain=0)
    for case in args.cases:
        for sid in (None, FILM_SID_MM):
            for look in [None, *range(args.looks)]:
                film = real_film(case, sid_mm=sid, look_seed=look)
                for mirror in (False, True):
                    tag = f"{case}_{'parallel' if sid is None else f'sid{sid:.0f}'}_" \
                          f"{'plain' if look is None else f'look{look}'}{'_mirrored' if mirror else ''}"
                    score = score_film(film, mirror, args.out, tag)
                    totals["films"] += 1
                    totals["no_vertebra"] += bool(score["message"])
                    totals["certain"] += bool(score["certain"])
                    for key in keys:
                        totals[key] += score[key]
                    if score["message"]:
                        print(f"{tag}: no vertebra found ({score['message'][:90]}...)")
                        continue
                    levels = f"certain ({score['anchor']}), {score['right']} right" if score["certain"] \
                        else "uncertain"
                    print(f"{tag}: found {score['found']}, matched {score['matched']}, levels {levels}, "
                          f"false grade>=2 {score['false_grade']}, not assessed {score['not_assessed']}: "
                          + " ".join(score["pairs"]))
    print(f"TOTAL: {totals['films']} films, no vertebra on {totals['no_vertebra']}; found {totals['found']}, matched "
          f"{totals['matched']}; levels certain on {totals['certain']} films ({totals['right']} right, "
          f"{totals['confident_wrong']} wrong); false grade>=2 {totals['false_grade']}; not assessed "
          f"{totals['not_assessed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
