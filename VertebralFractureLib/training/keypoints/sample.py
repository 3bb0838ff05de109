"""One 2D training/evaluation sample: a mid-sagittal image with its vertebrae's keypoints and levels.

Saved as ``.npz`` caches (never committed) so training does not straighten a CT per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np

from .targets import genant_of, keypoint_centroids


@dataclass
class Sample:
    """A mid-sagittal image (1 mm pixels) with ground truth.

    Attributes:
        image: (H, W) float32, rows superior -> inferior, columns anterior -> posterior.
        keypoints: (n, 6, 2) ``[column, row]`` pixels, genant.KEYPOINT_NAMES order.
        levels: n level names.
        name: case identifier.
        meta: anything else (spacing, source...).

    """

    image: np.ndarray
    keypoints: np.ndarray
    levels: List[str]
    name: str = ""
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image = np.asarray(self.image, dtype=np.float32)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float64).reshape(-1, 6, 2)
        self.levels = [str(x) for x in self.levels]
        if len(self.levels) != len(self.keypoints):
            raise ValueError(f"{self.name}: {len(self.levels)} levels for {len(self.keypoints)} vertebrae")

    @property
    def genant(self) -> np.ndarray:
        """G of each vertebra (1 mm pixels)."""
        return genant_of(self.keypoints)

    @property
    def ignore(self) -> np.ndarray:
        """(m, 2) ``[column, row]`` centres of visible but unannotated (partial) vertebrae."""
        return np.asarray(self.meta.get("ignore", []), dtype=np.float64).reshape(-1, 2)

    @property
    def centroids(self) -> np.ndarray:
        """(n, 2) keypoint means."""
        return keypoint_centroids(self.keypoints)

    def save(self, path: Union[str, Path]) -> Path:
        """Write an ``.npz`` cache."""
        import json

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            image=self.image.astype(np.float16) if np.abs(self.image).max() < 6e4 else self.image,
            keypoints=self.keypoints,
            levels=np.array(self.levels, dtype="U4"),
            name=np.array(self.name),
            meta=np.array(json.dumps(self.meta, default=str)),
        )
        return path

    @classmethod
    def load(cls, path: Union[str, Path]) -> Sample:
        """Read an ``.npz`` cache written by :meth:`save`."""
        import json

        with np.load(path, allow_pickle=False) as data:
            return cls(
                data["image"].astype(np.float32),
                data["keypoints"],
                [str(x) for x in data["levels"]],
                str(data["name"]),
                json.loads(str(data["meta"])),
            )
