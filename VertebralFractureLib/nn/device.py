"""Choice of the torch device and CPU thread count."""

from __future__ import annotations

import os
from typing import Optional

#: Environment variable overriding the device (``cpu``, ``cuda``, ``cuda:1``...).
DEVICE_ENV = "VERTEBRAL_FRACTURE_DEVICE"


def pick_device(preferred: Optional[str] = None):
    """The torch device to run on: ``preferred``, else ``$VERTEBRAL_FRACTURE_DEVICE``, else CUDA if available, else CPU.

    Raises:
        ValueError: if a CUDA device is asked for and none is available.

    """
    import torch

    name = preferred or os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


def module_device(module):
    """The device of a network's parameters (CPU for a network without any): inference feeds its input there.

    The 2D networks (keypoint detectors, radiograph centroid and level nets) are loaded on the CPU: a forward pass
    takes milliseconds there and a CUDA transfer would cost as much; one moved to CUDA by the caller runs there.
    """
    import torch

    parameter = next(iter(module.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def limit_threads(threads: Optional[int]) -> None:
    """Cap the intra-op CPU threads of torch (no-op for ``None`` or values < 1)."""
    import torch

    if threads is not None and threads > 0:
        torch.set_num_threads(int(threads))
