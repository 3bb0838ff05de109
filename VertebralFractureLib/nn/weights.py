"""Model weights on disk: checkpoint files with a SHA-256 manifest.

Shipped weights live in ``VertebralFractureLib/weights/`` next to ``manifest.json``::

    {"centreline.pt": {"sha256": "...", "bytes": 123456, "model": "centreline",
                       "created": "2026-...", "description": "..."}}

A checkpoint is a plain dictionary ``{"format": "vertebral-fracture-weights/1", "model": NAME,
"config": {...}, "state_dict": {...}, "meta": {...}}`` read with ``torch.load(weights_only=True)``
(no pickled code runs). Loading checks the file's SHA-256 against the manifest entry, so a
truncated or altered file gives one clear error instead of a crash deep inside torch.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..io.atomic import atomic_path, atomic_write

PathLike = Union[str, Path]
#: Folder of the shipped weights.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST_NAME = "manifest.json"
FORMAT = "vertebral-fracture-weights/1"


class WeightsError(RuntimeError):
    """Weights that are missing, corrupted, or do not match their manifest."""


def sha256_of(path: PathLike) -> str:
    """Hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: PathLike = WEIGHTS_DIR) -> Dict[str, Dict[str, Any]]:
    """The manifest of a weights folder (empty if there is none).

    Raises:
        WeightsError: if the manifest exists but is not valid JSON.

    """
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise WeightsError(f"{path}: the weights manifest is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: the weights manifest must be a JSON object")
    return data


def register(path: PathLike, *, model: str, description: str = "", extra: Optional[Dict[str, Any]] = None) -> Dict:
    """Add or update the manifest entry of a weights file (in the file's own folder).

    Returns:
        The new entry.

    """
    path = Path(path)
    manifest = read_manifest(path.parent)
    entry = {
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "model": model,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "description": description,
        **(extra or {}),
    }
    manifest[path.name] = entry
    atomic_write(path.parent / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n", overwrite=True)
    return entry


def save_weights(
    model,
    path: PathLike,
    *,
    name: str,
    config: Dict[str, Any],
    meta: Optional[Dict[str, Any]] = None,
    overwrite: bool = True,
    manifest: bool = False,
    description: str = "",
) -> Path:
    """Write a checkpoint atomically; optionally register it in the folder's manifest.

    Args:
        model: a ``torch.nn.Module`` or a state dict.
        path: target ``.pt`` file.
        name: model name (``"centreline"``...), checked when loading.
        config: constructor arguments (plain JSON-like values) to rebuild the model.
        meta: training facts (steps, loss, data...), plain values.
        overwrite: replace an existing file.
        manifest: add / update the entry in ``manifest.json`` beside the file.
        description: manifest description.

    """
    import torch

    state = model.state_dict() if hasattr(model, "state_dict") else model
    checkpoint = {
        "format": FORMAT,
        "model": name,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()},
        "meta": dict(meta or {}),
    }
    with atomic_path(path, overwrite=overwrite) as temporary:
        torch.save(checkpoint, temporary)
        temporary.chmod(0o644)  # mkstemp creates 0600; weights are shipped read-only for everyone
    if manifest:
        register(path, model=name, description=description)
    return Path(path)


def resolve(name_or_path: PathLike) -> Path:
    """A weights file: an existing path, else a file name inside the shipped weights folder."""
    path = Path(name_or_path)
    if path.exists() or path.parent != Path("."):
        return path
    return WEIGHTS_DIR / path


def load_weights(
    name_or_path: PathLike,
    *,
    model: Optional[str] = None,
    verify: Optional[bool] = None,
    map_location: str = "cpu",
) -> Dict[str, Any]:
    """Read a checkpoint written by :func:`save_weights`, checking its SHA-256.

    Args:
        name_or_path: a file path, or the name of a shipped file (``"centreline.pt"``).
        model: expected model name; a different one raises.
        verify: check the SHA-256 against ``manifest.json`` in the file's folder. ``None`` (default):
            required for shipped weights, done for other files only when the manifest lists them.
        map_location: torch device for the tensors.

    Returns:
        The checkpoint dictionary (``config``, ``state_dict``, ``meta``...).

    Raises:
        WeightsError: missing file, digest mismatch, unreadable or foreign checkpoint.

    """
    import torch

    path = resolve(name_or_path)
    shipped = path.resolve().parent == WEIGHTS_DIR
    if not path.exists():
        hint = " (the shipped weights are missing: reinstall the package or train them with " \
               "'vertebral-fracture train')" if shipped else ""
        raise WeightsError(f"{path}: weights file not found{hint}")
    entries = read_manifest(path.parent)
    entry = entries.get(path.name)
    if verify is None:
        verify = shipped or entry is not None
    if verify:
        if entry is None:
            raise WeightsError(f"{path}: no entry in {path.parent / MANIFEST_NAME}; cannot check its SHA-256")
        actual = sha256_of(path)
        if actual != entry.get("sha256"):
            raise WeightsError(
                f"{path}: SHA-256 mismatch (file {actual[:12]}..., manifest {str(entry.get('sha256'))[:12]}...): "
                "the weights file is corrupted or was replaced; reinstall it or retrain"
            )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise WeightsError(f"{path}: cannot read the weights ({type(error).__name__}: {error})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT or "state_dict" not in checkpoint:
        raise WeightsError(f"{path}: not a VertebralFracture weights file (format {FORMAT!r} expected)")
    if model is not None and checkpoint.get("model") != model:
        raise WeightsError(f"{path}: holds weights of model {checkpoint.get('model')!r}, expected {model!r}")
    return checkpoint
