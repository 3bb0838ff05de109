"""The real CTs with a colon filled with positive oral contrast placed around the spine: 96 crops.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_colon_grid.py [--json out.json]

Issue 17 asks that a bright homogeneous blob, contrast in bowel among them, never becomes the spine. No real CT here
has opacified bowel, so :func:`bench_real_variants.oral_contrast_colon` draws it into the two real CTs with many
bodies, at every combination of: the patient's left or right; 70 or 90 mm beside the column; level with the bodies or
30 mm in front of them; 24 or 44 mm across; beside L1-L4 or L3-L5 of the sample CT, T10-L1 of the chest CT; the whole
CT, and its lowest three quarters (sample CT) or lowest half (chest CT). Each crop is analysed (no optional stage) and
scored against the reference; the summary counts the bodies found, the boxes outside the spine, the crops whose levels
are certain and right, those named wrongly with certainty (what must never happen), and grades >= 2 on normal bodies.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

#: (case, top level, bottom level) of the colon's stretch.
SPANS = (("sample_ct", "L1", "L4"), ("sample_ct", "L3", "L5"), ("cptac_chest", "T10", "L1"))


def main(argv: Optional[List[str]] = None) -> int:
    """Analyse every placement; print one line each and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from bench_real_variants import cut, oral_contrast_colon

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.pipeline import AnalysisOptions, analyze
    from VertebralFractureLib.training.real.reference import load_case, score_case

    rows = []
    for case, top, bottom in SPANS:
        reference = load_case(case)
        original = read_image(reference.image_path)
        lower = 0.75 if case == "sample_ct" else 0.5
        for side, beside, front, across in itertools.product(("left", "right"), (70.0, 90.0), (0.0, 30.0),
                                                             (24.0, 44.0)):
            image = oral_contrast_colon(original, reference, side, radius_mm=across / 2, beside_mm=beside,
                                        front_mm=front, levels=(top, bottom))
            for crop, view in (("whole", image), ("lower", cut(image, 0.0, lower))):
                result = analyze(view, AnalysisOptions(extra_stages=())).result
                score = score_case(result, reference)
                levels = result.patient.get("levels") or {}
                row = {"case": case, "span": f"{top}-{bottom}", "side": side, "beside_mm": beside, "front_mm": front,
                       "across_mm": across, "crop": crop, "found": score.found, "outside": score.outside,
                       "level_accuracy": score.level_accuracy, "certain": bool(levels.get("certain")),
                       "false_grade": len(score.false_grade),
                       "labels": " ".join(v.label for v in result.vertebrae)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    certain = [r for r in rows if r["certain"] and r["level_accuracy"] is not None]
    summary = {"crops": len(rows), "found": sum(r["found"] for r in rows), "outside": sum(r["outside"] for r in rows),
               "certain_right": sum(r["level_accuracy"] == 1.0 for r in certain),
               "certain_wrong": sum(r["level_accuracy"] < 1.0 for r in certain),
               "false_grade": sum(r["false_grade"] for r in rows)}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
