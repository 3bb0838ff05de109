"""Bundled sample data: a real abdominal CT for the README's first command.

``sample_ct.nii.gz`` is the test reference CT of the TotalSegmentator project (wasserth/TotalSegmentator,
Apache-2.0): 122 x 101 x 112 voxels at 3 mm, lumbar spine, sacrum and lower thoracic vertebrae in view.
In the repository it links to ``Testing/Data/real/totalsegmentator/example_ct.nii.gz`` (licence beside it).
"""

from __future__ import annotations

from pathlib import Path


def sample_ct_path() -> Path:
    """Path of the bundled sample CT.

    Raises:
        FileNotFoundError: if the installation does not include it.
    """
    path = Path(__file__).with_name("sample_ct.nii.gz")
    if not path.exists():
        raise FileNotFoundError(f"the bundled sample CT is missing ({path}); reinstall the package from the repository")
    return path
