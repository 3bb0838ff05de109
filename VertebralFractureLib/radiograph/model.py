"""The Gartland et al. 2025 centroid net: a U-Net with one Gaussian-heatmap channel per level, T4 ... L4.

Gartland et al. 2025, §2: a U-Net (Ronneberger et al. 2015) on the radiograph resized to 264 x 264 predicting a
13-layer heatmap stack. The network is :class:`.network.HeatmapUNet`: a lossless 4 x 4
space-to-depth stem, :class:`VertebralFractureLib.nn.unet.UNet` (2D) with five levels
(66 down to 5 pixels, so the deepest features see the whole radiograph, which identifying the
level needs; 8-16-24-32-32 channels). The 13 heatmaps, their Gaussian targets (sigma 1 heatmap
pixel = 4 input pixels) and the losses are at 66 x 66 (``heatmap_stride`` 4); peaks are refined
to sub-pixel precision and reported in the 264 x 264 frame and in the radiograph's pixels.
(``heatmap_stride`` 1 gives Gartland et al. 2025's 264 x 264 heatmaps, at about twice the training cost.)
Weights are saved with :mod:`VertebralFractureLib.nn.weights` (SHA-256 manifest) as
``radiograph_centroids*.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Union

from .labels import CENTROID_LEVELS

#: Model name in checkpoints and the manifest.
MODEL_NAME = "radiograph-centroids"
#: Shipped weights (the UNet-L2 model, Gartland et al. 2025's best).
WEIGHTS_NAME = "radiograph_centroids.pt"
#: Names of the four losses of Gartland et al. 2025, appendix B, in Table 1 order, and the paper's model names.
LOSSES = ("base", "l1", "l2", "l3")
MODEL_NAMES = {"base": "UNet-Base", "l1": "UNet-L1", "l2": "UNet-L2", "l3": "UNet-L3"}


def default_config() -> Dict[str, Any]:
    """Settings stored with the weights."""
    return {
        "levels": list(CENTROID_LEVELS),
        "space_to_depth": 4,
        "heatmap_stride": 4,
        "channels": [8, 16, 24, 32, 32],
        "convs": [1, 2, 2, 2, 2],
        "mode": "resize",
        "size": 264,
        "native_mm": 1.5,
        "sigma_px": 1.0,
        "presence_threshold": 0.3,
        "loss": "l2",
    }


@dataclass
class CentroidModel:
    """The network and its settings."""

    net: Any
    config: Dict[str, Any] = field(default_factory=default_config)
    sha256: Optional[str] = None

    @classmethod
    def create(cls, config: Optional[Dict[str, Any]] = None, seed: int = 0) -> CentroidModel:
        """A freshly initialised model."""
        import torch

        from .network import HeatmapUNet

        settings = default_config()
        settings.update(config or {})
        torch.manual_seed(seed)
        stride = int(settings["heatmap_stride"])
        if stride not in (1, int(settings["space_to_depth"])):
            raise ValueError(f"heatmap_stride must be 1 or space_to_depth ({settings['space_to_depth']}), got {stride}")
        net = HeatmapUNet(len(settings["levels"]), settings["channels"], settings["convs"], settings["space_to_depth"],
                          upsample=stride == 1)
        return cls(net, settings)

    @property
    def levels(self):
        """Level name of each heatmap channel."""
        return tuple(self.config["levels"])

    def save(self, path: Union[str, Path], *, meta: Optional[Dict[str, Any]] = None, register: bool = False) -> Path:
        """Write the checkpoint atomically; ``register`` adds it to the folder's ``manifest.json``."""
        from ..nn.weights import save_weights

        return save_weights(self.net, path, name=MODEL_NAME, config=self.config, meta=meta, manifest=register,
                            description=(f"Gartland et al. 2025 level-centroid U-Net, loss "
                                         f"{self.config['loss']}, on lateral DRRs"))

    @classmethod
    def load(cls, name_or_path: Union[str, Path, None] = None) -> CentroidModel:
        """Load a checkpoint (the shipped weights by default), SHA-256 checked against the manifest.

        Raises:
            VertebralFractureLib.nn.weights.WeightsError: missing, corrupt or foreign file.

        """
        from ..nn.weights import load_weights, resolve, sha256_of

        name_or_path = name_or_path or WEIGHTS_NAME
        checkpoint = load_weights(name_or_path, model=MODEL_NAME)
        model = cls.create(checkpoint["config"])
        model.net.load_state_dict(checkpoint["state_dict"])
        model.net.eval()
        model.sha256 = sha256_of(resolve(name_or_path))
        model.config.setdefault("meta", checkpoint.get("meta", {}))
        return model
