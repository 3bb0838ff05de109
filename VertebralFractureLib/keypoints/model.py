"""The shipped keypoint model: detector + level net + their settings, saved as one ``.pt`` file.

The file is a project checkpoint (:mod:`VertebralFractureLib.nn.weights`, format
``vertebral-fracture-weights/1``, model ``"keypoints"``): plain tensors and values, read with
``torch.load(..., weights_only=True)``; the two nets' parameters share one ``state_dict`` under the
prefixes ``rpn.`` and ``levels.``, and ``config`` holds the anchors, strides, level channels and
the calibrated score threshold. Shipped weights are SHA-256 checked against ``manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from ..levels import LABEL_LEVELS
from .anchors import ASPECT_RATIOS, SCALES_MM, anchor_shapes

FORMAT = "vertebral-fracture/keypoints/1"  # early stand-alone format, still readable
MODEL_NAME = "keypoints"
WEIGHTS_NAME = "keypoints.pt"
#: Pixel size of the detector's input (mm).
DETECTOR_SPACING_MM = 1.0
#: Pixel size of the level net's input and heatmaps (mm).
LEVEL_CELL_MM = 4.0


def default_config() -> Dict[str, Any]:
    """Settings stored with the weights (and used to build a fresh model)."""
    return {
        "scales_mm": list(SCALES_MM),
        "aspect_ratios": list(ASPECT_RATIOS),
        "aspect_ratio_definition": "width/height",
        "stride": 4,
        "rpn_channels": [8, 16, 32, 64],
        "level_channels": [8, 16, 32, 32, 32],
        "levels": list(LABEL_LEVELS),
        "spacing_mm": DETECTOR_SPACING_MM,
        "level_cell_mm": LEVEL_CELL_MM,
        "heatmap_sigma_mm": 6.0,
        "score_threshold": 0.5,
        "nms_iou": 0.3,
        "vote_iou": 0.5,
        "width_px": 96,
        # CT mid-sagittal images: the straightening curve runs through the image's centre column,
        # so detections centred further than this (mm) from it are not vertebral bodies (rib heads,
        # posterior elements). None disables the check (radiographs).
        "max_offset_mm": None,
        # the level heatmaps are rescaled by their image maximum before decoding when it is lower
        "normalise_level_scores": True,
    }


@dataclass
class KeypointModel:
    """Detector (:class:`..network.KeypointRPN`) + level net (:class:`..network.LevelNet`) + settings."""

    rpn: Any
    levels: Any
    config: Dict[str, Any] = field(default_factory=default_config)
    sha256: Optional[str] = None

    @classmethod
    def create(cls, config: Optional[Dict[str, Any]] = None, seed: int = 0) -> KeypointModel:
        """A freshly initialised model."""
        import torch

        from .network import KeypointRPN, LevelNet

        settings = default_config()
        settings.update(config or {})
        torch.manual_seed(seed)
        rpn = KeypointRPN(
            len(settings["scales_mm"]) * len(settings["aspect_ratios"]), settings["rpn_channels"], settings["stride"]
        )
        levels = LevelNet(len(settings["levels"]), settings["level_channels"])
        return cls(rpn, levels, settings)

    @property
    def shapes(self) -> np.ndarray:
        """Anchor widths and heights in detector pixels, (A, 2)."""
        return anchor_shapes(self.config["scales_mm"], self.config["aspect_ratios"], self.config["spacing_mm"])

    def eval(self) -> KeypointModel:
        """Switch both nets to inference mode."""
        self.rpn.eval()
        self.levels.eval()
        return self

    def state_dict(self) -> Dict[str, Any]:
        """Both nets' parameters, prefixed ``rpn.`` and ``levels.``."""
        state = {f"rpn.{k}": v.detach().cpu() for k, v in self.rpn.state_dict().items()}
        state.update({f"levels.{k}": v.detach().cpu() for k, v in self.levels.state_dict().items()})
        return state

    def save(
        self, path: Union[str, Path], *, overwrite: bool = True, manifest: bool = False, meta: Optional[Dict] = None
    ) -> Path:
        """Write a project checkpoint atomically (float32, about 1 MB); optionally register it in the manifest."""
        from ..nn.weights import save_weights

        path = save_weights(
            self, path, name=MODEL_NAME, config=self.config, meta=meta, overwrite=overwrite, manifest=manifest,
            description=("vertebra detector with six keypoints (Pisov et al. 2020, §3.2) "
                         "and level heatmaps (Gartland et al. 2025)"),
        )
        Path(path).chmod(0o644)
        return Path(path)

    @classmethod
    def from_state(cls, state: Dict[str, Any], sha256: Optional[str] = None) -> KeypointModel:
        """Build from a loaded state dictionary.

        Raises:
            ValueError: if the dictionary is not a keypoint model.

        """
        if isinstance(state, dict) and state.get("format") == FORMAT:
            rpn, levels = state["rpn"], state["levels"]
        elif isinstance(state, dict) and state.get("model") == MODEL_NAME and "state_dict" in state:
            weights = state["state_dict"]
            rpn = {k[4:]: v for k, v in weights.items() if k.startswith("rpn.")}
            levels = {k[7:]: v for k, v in weights.items() if k.startswith("levels.")}
        else:
            raise ValueError(f"not a keypoint model file (expected a {MODEL_NAME!r} checkpoint)")
        model = cls.create(state["config"])
        model.rpn.load_state_dict(rpn)
        model.levels.load_state_dict(levels)
        model.sha256 = sha256
        return model.eval()


def default_weights_path() -> Path:
    """The shipped weights inside the package."""
    from ..nn.weights import WEIGHTS_DIR

    return WEIGHTS_DIR / WEIGHTS_NAME


def load_model(path: Optional[Union[str, Path]] = None) -> KeypointModel:
    """Load a keypoint model; the shipped weights by default, SHA-256 checked against the manifest.

    Raises:
        FileNotFoundError: if the weights file does not exist.
        ValueError: if the file is not a keypoint model or fails its checksum.

    """
    import torch

    from ..nn.weights import WeightsError, load_weights, sha256_of

    target = Path(path) if path is not None else default_weights_path()
    if not target.exists():
        raise FileNotFoundError(
            f"{target}: keypoint model weights not found (train with `vertebral-fracture train keypoints`)"
        )
    try:
        state = load_weights(target)
    except WeightsError as error:
        if "not a VertebralFracture weights file" not in str(error):
            raise ValueError(str(error)) from None
        state = torch.load(str(target), map_location="cpu", weights_only=True)  # early stand-alone format
    return KeypointModel.from_state(state, sha256=sha256_of(target))

