import pytest
import torch

from VertebralFractureLib.nn.device import DEVICE_ENV, limit_threads, pick_device


def test_pick_device_cpu_when_asked(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert pick_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert pick_device().type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda")


def test_limit_threads_keeps_value():
    before = torch.get_num_threads()
    limit_threads(1)
    assert torch.get_num_threads() == 1
    limit_threads(None)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(before)



def test_module_device_is_where_the_parameters_are():
    """The 2D nets feed their input to their parameters' device (CUDA itself is checked on a GPU machine)."""
    from VertebralFractureLib.keypoints.model import load_model
    from VertebralFractureLib.nn.device import module_device

    assert module_device(torch.nn.ReLU()) == torch.device("cpu")  # no parameters: the CPU
    assert module_device(torch.nn.Linear(2, 2, device="meta")) == torch.device("meta")
    assert module_device(load_model().rpn) == torch.device("cpu")  # the shipped 2D detector loads on the CPU
