"""The dependency check before Apply: pip packages after asking, torch through the PyTorch extension."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import pytest

from VertebralFractureLib.mrml.dependencies import (
    ASK_EXTENSION,
    NEEDED,
    TORCH_REQUIREMENT,
    ensure_dependencies,
)


@dataclass
class FakeTorch:
    """A PyTorch extension that records what it was asked to do."""

    torch: bool = False
    extension: bool = True
    extension_ok: bool = True
    torch_ok: bool = True
    calls: List[str] = field(default_factory=list)

    def torch_installed(self) -> bool:
        return self.torch

    def extension_installed(self) -> bool:
        return self.extension

    def install_extension(self) -> bool:
        self.calls.append("install extension")
        return self.extension_ok

    def install_torch(self, requirement: str) -> bool:
        self.calls.append(f"install torch{requirement}")
        self.torch = self.torch_ok
        return self.torch_ok


@dataclass
class User:
    """Answers the questions (all yes, or all no) and keeps what the dialogs showed."""

    answer: bool = True
    questions: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    pip: List[str] = field(default_factory=list)

    def confirm(self, text: str) -> bool:
        self.questions.append(text)
        return self.answer

    def check(self, torch, *, analysis=True, missing=(), installs=True):
        gone = set(missing)

        def find_spec(name):
            return None if name in gone else object()

        def pip_install(names):
            self.pip.append(names)
            if installs:
                gone.difference_update(module for module, pip in NEEDED if pip in names.split())

        return ensure_dependencies(self.confirm, pip_install, self.errors.append, torch, analysis=analysis,
                                   find_spec=find_spec)


def test_torch_present_asks_nothing():
    user, torch = User(), FakeTorch(torch=True)
    status = user.check(torch)
    assert status and status.ready and not status.restart
    assert user.questions == [] and torch.calls == [] and user.errors == []


def test_torch_missing_with_the_extension_is_installed_after_one_question():
    user, torch = User(), FakeTorch(torch=False, extension=True)
    status = user.check(torch)
    assert status.ready and status.message == "PyTorch installed."
    assert len(user.questions) == 1 and "PyTorch" in user.questions[0] and TORCH_REQUIREMENT in user.questions[0]
    assert torch.calls == [f"install torch{TORCH_REQUIREMENT}"]


def test_torch_install_declined_runs_nothing():
    user, torch = User(answer=False), FakeTorch(torch=False, extension=True)
    status = user.check(torch)
    assert not status and status.message == "PyTorch was not installed; nothing was run."
    assert torch.calls == [] and user.errors == []


def test_torch_install_failure_is_an_error():
    user, torch = User(), FakeTorch(torch=False, extension=True, torch_ok=False)
    status = user.check(torch)
    assert not status and status.message == "Installing PyTorch failed; nothing was run."
    assert user.errors and user.errors[0].startswith("Installing PyTorch failed")


def test_missing_extension_is_offered_then_a_restart_is_asked_for():
    user, torch = User(), FakeTorch(torch=False, extension=False)
    status = user.check(torch)
    assert user.questions == [ASK_EXTENSION]
    assert torch.calls == ["install extension"]  # never installTorch: the extension's modules load after a restart
    assert not status.ready and status.restart
    assert status.message == "The PyTorch extension is installed: restart Slicer, then press Apply again."


def test_missing_extension_declined_or_failed():
    user, torch = User(answer=False), FakeTorch(torch=False, extension=False)
    status = user.check(torch)
    assert not status and not status.restart and torch.calls == []
    user, torch = User(), FakeTorch(torch=False, extension=False, extension_ok=False)
    status = user.check(torch)
    assert not status and not status.restart and torch.calls == ["install extension"]
    assert user.errors == ["Installing the PyTorch extension failed: install it from the Extensions Manager."]


def test_loading_results_does_not_need_torch():
    user, torch = User(), FakeTorch(torch=False, extension=False)
    assert user.check(torch, analysis=False).ready
    assert user.questions == [] and torch.calls == []


@pytest.mark.parametrize("answer", [True, False])
def test_pip_packages_are_installed_only_after_asking(answer):
    user, torch = User(answer=answer), FakeTorch(torch=True)
    status = user.check(torch, missing=("skimage",))
    assert user.questions[0] == "The analysis needs scikit-image, which is not installed. Install now?"
    assert user.pip == (["scikit-image"] if answer else [])
    assert bool(status) is answer


def test_a_failed_pip_install_stops():
    user, torch = User(), FakeTorch(torch=True)
    status = user.check(torch, missing=("scipy",), installs=False)
    assert not status and user.errors == ["Installing scipy failed; see the Python console."]


def test_without_an_installer_torch_missing_is_an_error_not_a_crash():
    user = User()
    status = ensure_dependencies(user.confirm, user.pip.append, user.errors.append, None,
                                 find_spec=lambda name: None if name == "torch" else object())
    assert not status and user.errors[0].startswith("PyTorch is missing: install the PyTorch extension")
    assert ensure_dependencies(user.confirm, user.pip.append, user.errors.append, None, find_spec=lambda n: object())


def test_the_module_logic_uses_the_slicer_installer(slicer_core, monkeypatch):
    """``VertebralFractureLogic.ensureDependencies`` passes Slicer's dialogs and the PyTorch extension."""
    import importlib.util as iu
    from pathlib import Path

    import slicer

    from VertebralFractureLib.mrml import dependencies

    seen = {}

    def fake_ensure(confirm, pip_install, error, torch, *, analysis):
        seen.update(confirm=confirm, pip_install=pip_install, error=error, torch=torch, analysis=analysis)
        return dependencies.DependencyStatus(True)

    monkeypatch.setattr(dependencies, "ensure_dependencies", fake_ensure)
    path = Path(__file__).resolve().parents[3] / "VertebralFracture" / "VertebralFracture.py"
    spec = iu.spec_from_file_location("VertebralFractureDeps", path)
    module = iu.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.VertebralFractureLogic.ensureDependencies(analysis=True)
    assert seen["confirm"] is slicer.util.confirmOkCancelDisplay and seen["pip_install"] is slicer.util.pip_install
    assert isinstance(seen["torch"], dependencies.SlicerTorchInstaller) and seen["analysis"] is True
