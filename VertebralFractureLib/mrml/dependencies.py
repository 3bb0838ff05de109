"""The Python packages the analysis needs, installed only after the user agrees (Qt-free; collaborators passed in).

Two kinds of packages:

* pip packages Slicer's Python may lack (:data:`NEEDED`): installed with ``slicer.util.pip_install``
  after one confirmation;
* PyTorch, which only the **PyTorch extension** installs properly (it picks the build for the
  computer's GPU with light-the-torch), as SlicerNNUnet and TotalSegmentator do it:

  1. torch importable: nothing to do;
  2. the extension (its ``PyTorchUtils`` module) is there: ask "install PyTorch now?" with
     ``slicer.util.confirmOkCancelDisplay``, then ``PyTorchUtilsLogic().installTorch(askConfirmation=False,
     torchVersionRequirement=">=2.0")`` (the question was already asked);
  3. the extension is missing: ask "install the PyTorch extension?", install it from the extension
     server (``extensionsManagerModel().installExtensionFromServer("PyTorch")``) and tell the user to
     restart Slicer (a new extension's modules load at the next start) and press Apply again.

:func:`ensure_dependencies` holds that decision; what touches Slicer is the :class:`TorchInstaller`
passed to it (:class:`SlicerTorchInstaller` inside Slicer, a fake in the tests).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

#: (import name, pip name) of the packages Slicer's Python may lack.
NEEDED = (("skimage", "scikit-image"), ("scipy", "scipy"))
#: The torch versions the library works with (``pyproject.toml``).
TORCH_REQUIREMENT = ">=2.0"
#: The name of the extension that installs torch in Slicer.
TORCH_EXTENSION = "PyTorch"

ASK_TORCH = (
    "The analysis needs PyTorch (torch {requirement}), which is not installed.\n\n"
    "Install it now? The PyTorch extension downloads the build that fits this computer (GPU or CPU); "
    "this can take several minutes."
)
ASK_EXTENSION = (
    "The analysis needs PyTorch, which is installed by the PyTorch extension; that extension is missing.\n\n"
    "Install the PyTorch extension now? Slicer must then be restarted before PyTorch itself is installed."
)


class TorchInstaller(Protocol):
    """What :func:`ensure_dependencies` needs to install torch (Slicer's PyTorch extension, or a fake)."""

    def torch_installed(self) -> bool:
        """Whether ``torch`` can be imported."""

    def extension_installed(self) -> bool:
        """Whether the PyTorch extension (its ``PyTorchUtils`` module) is available."""

    def install_extension(self) -> bool:
        """Install the PyTorch extension from the extension server; False when that failed."""

    def install_torch(self, requirement: str) -> bool:
        """Install torch through the extension (no question asked); False when that failed."""


@dataclass(frozen=True)
class DependencyStatus:
    """The outcome of :func:`ensure_dependencies`.

    Attributes:
        ready: everything needed is importable: the analysis can run.
        message: one line for the status bar ("" when ready without installing anything).
        restart: Slicer must be restarted (an extension was installed) before trying again.

    """

    ready: bool
    message: str = ""
    restart: bool = False

    def __bool__(self) -> bool:
        return self.ready


def missing_packages(find_spec: Callable[[str], object] = importlib.util.find_spec) -> list:
    """The pip names of the :data:`NEEDED` packages that cannot be imported."""
    return [pip for module, pip in NEEDED if find_spec(module) is None]


def ensure_dependencies(
    confirm: Callable[[str], bool],
    pip_install: Callable[[str], None],
    error: Callable[[str], None],
    torch: Optional[TorchInstaller] = None,
    *,
    analysis: bool = True,
    find_spec: Callable[[str], object] = importlib.util.find_spec,
) -> DependencyStatus:
    """Install what is missing after asking; torch through the PyTorch extension (see the module docstring).

    Args:
        confirm: asks the user a yes / no question (``slicer.util.confirmOkCancelDisplay``).
        pip_install: installs pip packages (``slicer.util.pip_install``).
        error: shows an error (``slicer.util.errorDisplay``): used when an installation failed.
        torch: the torch installer; None: torch cannot be installed from here (outside Slicer).
        analysis: also make sure torch is there (the analysis runs; not needed to load results).
        find_spec: ``importlib.util.find_spec`` (replaced in the tests).

    Returns:
        The outcome; truthy when the analysis can run.

    """
    missing = missing_packages(find_spec)
    if missing:
        if not confirm(f"The analysis needs {', '.join(missing)}, which is not installed. Install now?"):
            return DependencyStatus(False, f"Not installed: {', '.join(missing)}; nothing was run.")
        pip_install(" ".join(missing))
        still = missing_packages(find_spec)
        if still:
            error(f"Installing {', '.join(still)} failed; see the Python console.")
            return DependencyStatus(False, f"Installing {', '.join(still)} failed; nothing was run.")
    if not analysis:
        return DependencyStatus(True)
    if torch is None:
        if find_spec("torch") is not None:
            return DependencyStatus(True)
        error("PyTorch is missing: install the PyTorch extension (Extensions Manager) to run the analysis.")
        return DependencyStatus(False, "PyTorch is missing; nothing was run.")
    if torch.torch_installed():
        return DependencyStatus(True)
    if not torch.extension_installed():
        if not confirm(ASK_EXTENSION):
            return DependencyStatus(False, "PyTorch is missing (the extension was not installed); nothing was run.")
        if not torch.install_extension():
            error(f"Installing the {TORCH_EXTENSION} extension failed: install it from the Extensions Manager.")
            return DependencyStatus(False, f"Installing the {TORCH_EXTENSION} extension failed; nothing was run.")
        return DependencyStatus(
            False, f"The {TORCH_EXTENSION} extension is installed: restart Slicer, then press Apply again.", True
        )
    if not confirm(ASK_TORCH.format(requirement=TORCH_REQUIREMENT)):
        return DependencyStatus(False, "PyTorch was not installed; nothing was run.")
    if not torch.install_torch(TORCH_REQUIREMENT) or not torch.torch_installed():
        error("Installing PyTorch failed: see the Python console, or use the PyTorch Utils module.")
        return DependencyStatus(False, "Installing PyTorch failed; nothing was run.")
    return DependencyStatus(True, "PyTorch installed.")


class SlicerTorchInstaller:
    """:class:`TorchInstaller` of the Slicer application: the PyTorch extension (``PyTorchUtils``).

    Only used inside Slicer (imports ``slicer`` and ``PyTorchUtils`` when called).
    """

    def torch_installed(self) -> bool:
        """Whether ``torch`` can be imported (asked to the extension when it is there)."""
        try:
            import PyTorchUtils
        except ImportError:
            return importlib.util.find_spec("torch") is not None
        return bool(PyTorchUtils.PyTorchUtilsLogic.torchInstalled())

    def extension_installed(self) -> bool:
        """Whether the ``PyTorchUtils`` module of the PyTorch extension can be imported."""
        return importlib.util.find_spec("PyTorchUtils") is not None

    def install_extension(self) -> bool:
        """Install the PyTorch extension from the server (takes effect after a restart)."""
        import slicer

        manager = slicer.app.extensionsManagerModel()
        if manager.isExtensionInstalled(TORCH_EXTENSION):
            return True
        return bool(manager.installExtensionFromServer(TORCH_EXTENSION))

    def install_torch(self, requirement: str) -> bool:
        """``PyTorchUtilsLogic().installTorch`` without its own question (already asked)."""
        import PyTorchUtils

        logic = PyTorchUtils.PyTorchUtilsLogic()
        return logic.installTorch(askConfirmation=False, torchVersionRequirement=requirement) is not None


__all__ = [
    "DependencyStatus",
    "NEEDED",
    "SlicerTorchInstaller",
    "TORCH_REQUIREMENT",
    "TorchInstaller",
    "ensure_dependencies",
    "missing_packages",
]
