"""The generated-case mix of the classifier's training set and the field-of-view augmentation."""

import argparse

import numpy as np
import pytest

from VertebralFractureLib.grading.patches import FILL_HU, normalise_hu
from VertebralFractureLib.training.grading.data import SynthMix, build_cache
from VertebralFractureLib.training.grading.regime import RegimeConfig, _Batches, cut_field_of_view
from VertebralFractureLib.training.grading.train import add_train_arguments, synth_mix

FILL = float(normalise_hu(np.array([FILL_HU]))[0])


def test_mix_cycles_profiles_and_spacings_and_draws_sizes_per_seed():
    mix = SynthMix(realism=("hospital", "v1"), spacings=(None, (3.0, 3.0, 3.0), (0.8, 0.8, 3.0)),
                   size_scale=(0.9, 1.3), fracture_prevalence=0.3)
    cases = [mix.overrides(620000 + i, i) for i in range(6)]
    assert [c["realism"] for c in cases] == ["hospital", "v1"] * 3
    assert "spacing" not in cases[0] and cases[1]["spacing"] == (3.0, 3.0, 3.0) and cases[5]["spacing"] == (
        0.8, 0.8, 3.0)
    sizes = [c["size_scale"] for c in cases]
    assert all(0.9 <= s <= 1.3 for s in sizes) and len(set(sizes)) == 6
    assert mix.overrides(620003, 3) == cases[3]  # the same seed gives the same case
    assert all(c["fracture_prevalence"] == 0.3 for c in cases)
    # the plain generator keeps the cache folder of earlier runs; another mix gets its own
    assert SynthMix().tag() == "" and mix.tag().startswith("_") and mix.tag() != SynthMix(size_scale=(0.9, 1.2)).tag()
    assert "size_scale" not in SynthMix().overrides(5, 0)


def test_the_command_line_builds_the_mix():
    args = add_train_arguments(argparse.ArgumentParser()).parse_args(
        ["--synth", "4", "--realism", "hospital", "v1", "--spacings", "preset", "3", "0.8,0.8,3",
         "--size-scale", "0.9", "1.3", "--fracture-prevalence", "0.3", "--fov-cut", "0.25"])
    mix = synth_mix(args)
    assert mix.realism == ("hospital", "v1") and mix.spacings == (None, (3.0, 3.0, 3.0), (0.8, 0.8, 3.0))
    assert mix.size_scale == (0.9, 1.3) and mix.fracture_prevalence == 0.3 and args.fov_cut == 0.25
    bad = add_train_arguments(argparse.ArgumentParser()).parse_args(["--spacings", "1,2"])
    with pytest.raises(ValueError, match="1,2"):
        synth_mix(bad)


def test_a_generated_case_gets_its_size_and_spacing(tmp_path, monkeypatch):
    import VertebralFractureLib.synth as synth
    from VertebralFractureLib.genant import heights

    mix = SynthMix(realism=("hospital",), spacings=((3.0, 3.0, 3.0),), size_scale=(1.25, 1.3))
    made = []
    real_generate = synth.generate_case

    def spy(seed, preset, **overrides):
        case = real_generate(seed, preset, **overrides)
        made.append(case)
        return case

    monkeypatch.setattr(synth, "generate_case", spy)
    rows = build_cache([620001], tmp_path / "large", mix=mix, progress=False)
    plain = real_generate(620001, "chest", radiograph=False, realism="hospital", spacing=(3.0, 3.0, 3.0),
                          size_scale=1.0)
    case = made[0]
    assert len(rows) == len(case.truth.vertebrae) and tuple(case.ct.GetSpacing()) == (3.0, 3.0, 3.0)
    ratio = [max(heights(a.keypoints)) / max(heights(b.keypoints))
             for a, b in zip(case.truth.vertebrae, plain.truth.vertebrae)]
    assert 1.2 <= float(np.median(ratio)) <= 1.35  # the bodies are drawn 25-30 % larger


@pytest.mark.parametrize(("side", "region", "kept"), [
    (0, (slice(None), slice(97, None)), (slice(None), slice(None, 96))),
    (1, (slice(None), slice(None, 15)), (slice(None), slice(16, None))),
    (2, (slice(None, 15), slice(None)), (slice(16, None), slice(None))),
    (3, (slice(97, None), slice(None)), (slice(None, 96), slice(None))),
])
def test_the_field_of_view_edge_fills_one_side_only(side, region, kept):
    image = np.zeros((112, 112), np.float32)
    cut_field_of_view(image, side, 40.0)  # centre 55.5: edge at 95.5 / 15.5
    assert np.all(image[region] == FILL) and np.all(image[kept] == 0.0)


def test_with_fov_cut_training_patches_get_edges_and_without_they_do_not(tiny_set):
    def filled(config):
        batches = _Batches(tiny_set, config, np.random.default_rng(0))
        x = batches.tensor(np.arange(40)).numpy()[:, 0]
        return np.mean([np.any(np.all(np.isclose(p, FILL), axis=0)) or np.any(np.all(np.isclose(p, FILL), axis=1))
                        for p in x])
    assert filled(RegimeConfig(fov_cut=0.0)) == 0.0
    assert filled(RegimeConfig(fov_cut=1.0)) == 1.0
