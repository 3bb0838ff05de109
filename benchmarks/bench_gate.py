"""Time of the quality gate per vertebra on the real chest CT (target: 20 ms on one core).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_gate.py [--repeat 20]

Runs :func:`VertebralFractureLib.quality.assess_vertebra` on a T8-sized body of the real contrast chest CT
(``Testing/Data/real/cptac_chest``, 0.56 x 0.56 x 3 mm) and prints the median wall time per vertebra.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    import numpy as np
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of, read_image, to_canonical
    from VertebralFractureLib.quality import assess_vertebra

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    image = to_canonical(read_image(REPO / "Testing" / "Data" / "real" / "cptac_chest" / "cptac_chest.nii.gz"))
    volume, geometry = sitk.GetArrayFromImage(image), geometry_of(image)
    x, y, z = 25.0, -190.0, -165.0
    keypoints = np.array([[x, y + dy, z + s * 19.0 / 2] for dy in (-13.0, 0.0, 13.0) for s in (1, -1)])
    assess_vertebra(volume, geometry, keypoints, "T8")
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        assess_vertebra(volume, geometry, keypoints, "T8")
        times.append(time.perf_counter() - started)
    print(f"quality gate: median {1000 * statistics.median(times):.1f} ms per vertebra ({args.repeat} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
