"""The Python packages the analysis needs, installed only after the user agrees (Qt-free; dialogs passed in)."""

from __future__ import annotations

import importlib.util
from typing import Callable, Optional

#: (import name, pip name) of the packages Slicer's Python may lack.
NEEDED = (("skimage", "scikit-image"), ("scipy", "scipy"))


def ensure_dependencies(
    confirm: Callable[[str], bool],
    pip_install: Callable[[str], None],
    error: Callable[[str], None],
    install_torch: Optional[Callable[[], Optional[object]]] = None,
    *,
    analysis: bool = True,
) -> bool:
    """Install missing packages after asking; torch through the PyTorch extension (``install_torch``).

    Args:
        confirm: asks the user a yes / no question.
        pip_install: installs pip packages (``slicer.util.pip_install``).
        error: shows an error line.
        install_torch: installs torch after asking (the PyTorch extension's ``installTorch``); None: the
            extension is missing.
        analysis: also check torch.

    Returns:
        True when everything needed is importable.

    """
    missing = [pip for module, pip in NEEDED if importlib.util.find_spec(module) is None]
    if missing:
        if not confirm(f"VertebralFracture needs {', '.join(missing)}. Install now?"):
            return False
        pip_install(" ".join(missing))
    if analysis and importlib.util.find_spec("torch") is None:
        if install_torch is None:
            error("Install the PyTorch extension (Extensions Manager) to run the analysis.")
            return False
        return install_torch() is not None
    return True
