import argparse

import numpy as np
import torch
from test_sampling import fake_sample

from VertebralFractureLib.training.voxelmap.metrics import (
    CaseMap,
    choose_cube,
    choose_edge_margin,
    operating_point,
    patient_level,
)
from VertebralFractureLib.training.voxelmap.train import add_train_arguments, calibrate, split, train
from VertebralFractureLib.voxelmap.network import DualPathwayCNN


def test_a_few_steps_and_calibration():
    torch.manual_seed(0)
    samples = [fake_sample((12, 9, 9), seed=s) for s in range(3)]
    train_samples, val_samples = split(samples, 0.34)
    args = add_train_arguments(argparse.ArgumentParser()).parse_args(
        ["--segment", "3", "--batch", "2", "--steps", "4", "--epoch-steps", "2", "--val-batches", "1"])
    model = DualPathwayCNN("3d")
    report = train(model, train_samples, val_samples, args, log=lambda m: None)
    history = report["history"]
    assert report["steps"] == 4 and len(history) == 2
    assert all(np.isfinite(h["val_loss"]) for h in history)
    meta = calibrate(model.eval(), val_samples, log=lambda m: None)
    assert meta["cube"] in (3, 5, 7, 9, 11) and 0 <= meta["probability_threshold"] <= 1


def _case(name, fractured_blob):
    from VertebralFractureLib.geometry import ImageGeometry

    prob = np.zeros((30, 12, 12), np.float32)
    if fractured_blob:
        prob[18:24, 4:9, 4:9] = 0.9
    prob[5, 5, 5] = 0.6  # noise voxel in every case
    geometry = ImageGeometry([12, 12, 30], [2.0] * 3, [0.0] * 3, np.eye(3))
    centroids = np.array([[12.0, 12.0, 12.0], [12.0, 12.0, 42.0]])
    return CaseMap(name, prob, geometry, ["L1", "L2"], centroids, np.array([0, 2 if fractured_blob else 0]))


def test_metrics_on_hand_made_maps():
    cases = [_case(f"c{i}", i % 2 == 0) for i in range(6)]
    cube, aucs = choose_cube(cases, jitter_mm=0.0)
    assert aucs[cube] == 1.0
    patient = patient_level(cases, edge_margin_mm=0.0)
    assert patient["auc"] == 1.0
    point = operating_point(cases, edge_margin_mm=0.0)
    assert point["youden"] == 1.0 and 8.0 <= point["noise_mm3"] <= 1200.0


def test_choose_edge_margin_drops_blobs_at_the_scan_edge():
    cases = [_case(f"c{i}", i % 2 == 0) for i in range(6)]
    for case in cases[1::2]:  # patients without fracture: a cut vertebra lights up the first slices
        case.prob[0:8, 2:11, 2:11] = 0.9  # larger than the fracture
    assert patient_level(cases, edge_margin_mm=0.0)["auc"] < 1.0
    margin, aucs = choose_edge_margin(cases, candidates=(0.0, 4.0, 8.0, 12.0))
    assert margin == 4.0 and aucs[4.0] == aucs[12.0] == 1.0 and aucs[0.0] < 1.0  # ties: the smallest
