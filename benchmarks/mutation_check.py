"""Mutation check: does the test suite fail when the code that decides what a reader sees is wrong?

Each named mutation is a literal edit (old text -> new text, which must occur exactly once) of one file
of ``VertebralFractureLib``, applied to a COPY of the repository in a temporary folder (tracked and
untracked, not ignored files; the checkout itself is never touched). After each edit a small subset of
the tests that should catch it runs in the copy, with a timeout; the mutation is *killed* when the tests
fail (or time out), *survives* when they pass. The copy is restored before the next mutation. Before the
mutations, each distinct test subset runs once unmutated: a subset that fails there makes its mutations
"invalid" (not counted).

Modules covered: Genant grading (``genant.py``), the quality gate (``quality/``, the image's noise against a height
loss included), the body's mid-sagittal plane
(``keypoints/refine.py`` ``body_midplane``, the centroid of ``keypoints/stage.py``), keypoint post-processing
(``keypoints/nms.py``, the field-of-view edge check and confidence of ``keypoints/stage.py``), levels
(``keypoints/labelling.py``; the rib search, the iliac crest's plate and width, and the count across
a gap of ``keypoints/level_anchors.py``; a long gap in the chain grown into, ``keypoints/chain.py``), the
centre-line's guard against a contrast-filled colon (``spine/centreline.py``, ``spine/anatomy.py``), bone cement
(``implants.py``, the gate's cement check, the stages reading ``Analysis.model_ct``, the treated body's verdict), the
worklist
(``batch_runner.py``), atomic writes (``io/atomic.py``) and the
MRML bridge's coordinate conversions (``geometry.py`` ``lps_to_ras``, ``mrml/``).

Runs outside CI (several minutes on 2 cores)::

    OMP_NUM_THREADS=1 python benchmarks/mutation_check.py            # every mutation
    python benchmarks/mutation_check.py --list                        # names only
    python benchmarks/mutation_check.py --only nms_threshold_0_6 genant_grade2_bound

Prints one line per mutation, the kill rate and the survivors; exit code 1 when the kill rate is below
``--min-kill-rate`` (default 0.9).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
PKG = "VertebralFractureLib"
T = "Testing/Python"

# test subsets (kept small: each runs once per mutation)
GENANT = (f"{T}/test_genant.py",)
WORKLIST = (f"{T}/test_worklist_mutations.py",)
ATOMIC = (f"{T}/io/test_atomic.py", f"{T}/test_worklist_mutations.py")
NMS = (f"{T}/keypoints/test_nms.py",)
# the keypoint stage alone (no quality gate) on the sample CT: its own field-of-view check must mark the cut T12
KP_STAGE = (f"{T}/keypoints/test_stage_sample_ct.py",
            f"{T}/keypoints/test_stage.py::test_the_keypoint_stage_alone_marks_the_cut_t12_of_the_sample_ct")
LABELLING = (f"{T}/keypoints/test_labelling.py", f"{T}/keypoints/test_labelling_rules.py")
# test_gate_cardiac_crops.py: a real T10 with its canal but without posterior elements (cptac_cardiac_b), and a
# real T12 cut by the inferior (low-index) edge (cptac_cardiac_a)
GATE = (f"{T}/quality/test_gate.py", f"{T}/quality/test_gate_cardiac_crops.py")
GATE_STAGE = (f"{T}/quality/test_gate_stage.py",)
NOISE = (f"{T}/quality/test_noise.py",)
GATE_REAL = (f"{T}/quality/test_gate.py", f"{T}/quality/test_gate_stage.py", f"{T}/keypoints/test_stage_sample_ct.py")
GEOMETRY = (f"{T}/test_geometry.py", f"{T}/mrml/test_markups.py")
_ANCHORS = f"{T}/keypoints/test_level_anchors.py"
RIBS = (f"{_ANCHORS}::test_a_faint_piece_cut_by_the_edge_of_the_view_is_no_rib_and_a_dense_one_is",
        f"{_ANCHORS}::test_enhanced_kidney_crossing_the_rib_band_is_no_rib")
# the localisation against a contrast-filled colon (spine/anatomy.py, spine/centreline.py) and the crest's plate
_CENTRELINE = f"{T}/spine/test_centreline.py"
COLON = (f"{_CENTRELINE}::test_a_colon_filled_with_oral_contrast_beside_the_spine_does_not_take_the_centre_line",
         f"{_CENTRELINE}::test_a_network_point_in_bone_is_never_moved_away_from_the_middle_of_the_body",
         f"{_ANCHORS}::test_the_abdomen_ct_with_an_opacified_colon_is_counted_from_the_12th_rib_and_the_crests")
COLON_JOIN = (f"{T}/spine/test_anatomy.py::"
              "test_the_column_guided_track_is_continued_by_the_outline_guided_one_only_from_the_same_canal",)
COLON_OFFSET = (f"{_ANCHORS}::test_a_wide_colon_beside_l1_l4_does_not_bend_the_curve_into_a_second_box",)
CREST = (f"{_ANCHORS}::test_a_contrast_filled_colon_beside_the_column_is_no_iliac_crest_and_a_thin_plate_is",
         f"{_ANCHORS}::test_the_abdomen_ct_with_an_opacified_colon_is_counted_from_the_12th_rib_and_the_crests")
# a level counted across a gap, an iliac crest as wide as a wing, a long gap grown into (2026-12-07)
GAP_COUNT = (f"{_ANCHORS}::test_a_gap_of_one_or_two_missed_bodies_is_counted_and_a_longer_one_is_not",
             f"{_ANCHORS}::test_a_body_past_a_stretch_of_the_column_the_detector_cannot_see_is_not_named_with_certainty")
CREST_WIDTH = (f"{_ANCHORS}::test_a_strip_from_front_to_back_at_the_flank_is_no_iliac_crest_and_a_wide_plate_is",)
LONG_GAP = (f"{T}/keypoints/test_chain.py::test_a_gap_of_several_levels_is_grown_into_from_both_sides",
            f"{T}/keypoints/test_chain.py::test_the_noisy_chest_ct_keeps_every_body_between_the_ones_the_detector_is_sure_of")
# bone cement (implants.py, quality/checks.py, quality/stage.py, verdict.py, the stages reading Analysis.model_ct)
CEMENT = (f"{T}/test_implants.py",)
CEMENT_SCREWS = (f"{T}/quality/test_gate.py::test_instrumented_vertebrae_are_not_assessed_and_their_neighbours_are",)
CEMENT_GATE = (f"{T}/quality/test_gate.py::"
               "test_a_cement_bolus_below_the_metal_threshold_fails_the_metal_check_with_its_own_reason",)
CEMENT_VERDICT = (f"{T}/test_verdict.py::"
                  "test_a_body_treated_with_cement_asks_for_a_look_and_keeps_the_patient_from_normal",
                  f"{T}/test_implants.py::test_treated_bodies_keep_their_place_and_name_and_are_not_graded")
MRML_VOLUMES = (f"{T}/mrml/test_volumes.py",)
PLANE = (f"{T}/keypoints/test_refine.py", f"{T}/test_real_regression.py::"
         "test_tptbox_l3_keypoints_and_centroid_sit_on_the_middle_of_the_body")
MRML_MARKUPS = (f"{T}/mrml/test_markups.py",)
# the pixel -> RAS tests of test_radiograph.py by name (its analysis-run tests are slow and were being edited)
MRML_RADIOGRAPH = (f"{T}/mrml/test_radiograph_frames.py",
                   f"{T}/mrml/test_radiograph.py::test_radiograph_volume_maps_pixels_to_the_sagittal_plane",
                   f"{T}/mrml/test_radiograph.py::test_2d_result_shown_on_the_radiograph",
                   f"{T}/mrml/test_radiograph.py::test_round_trip_result_nodes_result_keeps_the_2d_points")


@dataclass(frozen=True)
class Mutation:
    """One named edit: ``old`` (occurring exactly once in ``path``) replaced by ``new``."""

    name: str
    path: str
    old: str
    new: str
    tests: Tuple[str, ...]


def _m(name: str, path: str, old: str, new: str, tests: Sequence[str]) -> Mutation:
    return Mutation(name, f"{PKG}/{path}", old, new, tuple(tests))


MUTATIONS: List[Mutation] = [
    # --- Genant grading (genant.py)
    _m("genant_G_max_over_min", "genant.py", "return float(h.min() / h.max())", "return float(h.max() / h.min())",
       GENANT),
    _m("genant_grade1_bound_le", "genant.py", "    if r < GRADE_THRESHOLDS[0]:\n        return 0",
       "    if r <= GRADE_THRESHOLDS[0]:\n        return 0", GENANT),
    _m("genant_grade2_bound", "genant.py", "    if r < GRADE_THRESHOLDS[1]:\n        return 1",
       "    if r <= GRADE_THRESHOLDS[1]:\n        return 1", GENANT),
    _m("genant_grade3_bound", "genant.py", "    if r <= GRADE_THRESHOLDS[2]:\n        return 2",
       "    if r < GRADE_THRESHOLDS[2]:\n        return 2", GENANT),
    _m("genant_thresholds_shifted", "genant.py", "GRADE_THRESHOLDS = (0.20, 0.25, 0.40)",
       "GRADE_THRESHOLDS = (0.20, 0.30, 0.40)", GENANT),
    _m("genant_type_argmax", "genant.py", "[int(np.argmin(np.asarray(h, dtype=float)))]",
       "[int(np.argmax(np.asarray(h, dtype=float)))]", GENANT),
    _m("genant_neighbour_grade_ignored", "genant.py",
       "        if neighbour_grade > grade and not (crush_only and grade > 0):",
       "        if neighbour_grade > grade + 9 and not (crush_only and grade > 0):", GENANT),
    _m("genant_patient_grade_min", "genant.py", "return int(max(grades, default=0))",
       "return int(min(grades, default=0))", GENANT),
    # --- quality gate (quality/)
    _m("gate_hard_fail_threshold", "quality/gate.py", "failed = [name for name in hard if results[name].score < 0.5]",
       "failed = [name for name in hard if results[name].score < 0.0]", GATE),
    _m("gate_canal_or_posterior_min", "quality/gate.py", "combined = max(canal.score, posterior.score)",
       "combined = min(canal.score, posterior.score)", GATE),
    # a failed hard check already keeps min(hard) x mean(soft) below 0.5, so dropping the 0.49 cap changes only a
    # rounding edge; the mutation that matters is a withheld vertebra reported as confident
    _m("gate_withheld_confident", "quality/gate.py", "round(min(confidence, 0.49), 3)",
       "round(max(confidence, 0.5), 3)", GATE),
    _m("gate_fov_check_dropped", "quality/gate.py",
       '        "field_of_view": c.check_field_of_view(geometry, frame, volume=volume),\n', "", GATE),
    _m("gate_fov_low_edge", "quality/checks.py", "    low = index < -0.5\n", "    low = index < -50.5\n", GATE),
    _m("gate_fov_high_edge", "quality/checks.py", "    high = index > size - 0.5\n",
       "    high = index > size + 50.5\n", GATE),
    _m("gate_status_not_applied", "quality/stage.py",
       '                vertebra.not_assessed(finding.reason or "the image does not support this vertebra")',
       "                pass", GATE_REAL),
    _m("gate_withhold_threshold", "quality/stage.py", "ENDPLATES_FOR_A_GRADE = 0.9", "ENDPLATES_FOR_A_GRADE = 0.0",
       GATE_STAGE),
    # --- a height loss against the image's noise (quality/noise.py, quality/stage.py withhold_losses_within_noise)
    _m("shape_grade_against_any_height", "quality/stage.py",
       "if normal is None or tallest <= SIZE_RATIO[2] * normal[0]:", "if True:", GATE_STAGE),
    _m("shape_grade_withheld_from_grade_1", "quality/stage.py",
       "if measure.grade < 2 or vertebra.source in EXACT_SOURCES:", "if vertebra.source in EXACT_SOURCES:",
       GATE_STAGE),
    _m("noise_rule_dropped", "quality/stage.py",
       "        withhold_losses_within_noise(result, volume, analysis.canonical_geometry, analysis.detected_points)\n",
       "", NOISE),
    _m("noise_any_margin", "quality/noise.py", "NOISE_CONFIDENCE = 0.99", "NOISE_CONFIDENCE = 0.5", NOISE),
    _m("noise_copies_without_noise", "quality/noise.py",
       "noisy = box + rng.normal(0.0, sigma, box.shape).astype(np.float32)", "noisy = box", NOISE),
    _m("noise_sd_unscaled", "quality/noise.py", "/ _MEDIAN_ABS_NORMAL / 6.0)", "/ _MEDIAN_ABS_NORMAL)", NOISE),
    _m("noise_unmeasured_box_copied", "quality/noise.py",
       "    if not np.isfinite(sigma):\n        return np.zeros((0, 3)), float(\"nan\")\n", "", NOISE),
    # --- the rib search of the level anchors (keypoints/level_anchors.py)
    _m("ribs_faint_piece_at_edge_is_a_rib", "keypoints/level_anchors.py",
       "faint_at_edge = at_edge and float(np.percentile(values, 90)) < SOFT_TISSUE_P90_HU", "faint_at_edge = False",
       RIBS),
    _m("ribs_any_piece_at_edge_is_soft", "keypoints/level_anchors.py",
       "faint_at_edge = at_edge and float(np.percentile(values, 90)) < SOFT_TISSUE_P90_HU", "faint_at_edge = at_edge",
       RIBS),
    # --- the localisation against a contrast-filled colon beside the spine, and the iliac crest's plate
    _m("colon_bone_vouches_for_a_point", "spine/centreline.py",
       "replace = covered & (agree < 0.5) & (conf >= 0.5) & (off_bone | unsupported)",
       "replace = covered & (agree < 0.5) & (conf >= 0.5) & off_bone", COLON),
    _m("colon_in_bone_moved_outward", "spine/centreline.py",
       "unsupported = ~canal_support_at(track, points) & inward", "unsupported = ~canal_support_at(track, points)",
       COLON),
    _m("colon_whole_column_guides_the_canal", "spine/anatomy.py",
       "column = column[_supported(column, geometry, cands)]", "column = column", COLON),
    _m("colon_track_never_continued", "spine/anatomy.py", "    if not add:\n        return track\n",
       "    return track\n", COLON_JOIN),
    _m("colon_join_anywhere", "spine/anatomy.py",
       "if not other[end] or np.hypot(*(outline.canal[end, :2] - track.canal[end, :2])) > JOIN_MM:",
       "if not other[end]:", COLON_JOIN),
    _m("colon_no_local_offset", "spine/centreline.py",
       "out[row] = np.median(points[nearby, :2] - body[nearby, :2], axis=0)", "pass", COLON_OFFSET),
    _m("crest_any_large_bone", "keypoints/level_anchors.py",
       "return float(np.median(widths)) <= PELVIS_MAX_THICKNESS_MM", "return True", CREST),
    # --- a level counted across a gap, the crest's width, a long gap grown into
    _m("gap_counted_when_its_number_is_among_several", "keypoints/level_anchors.py",
       "counted[k] = levels_spanned(gaps[k] / max(pitch, 1e-6)) == [levels[k]]",
       "counted[k] = levels[k] in levels_spanned(gaps[k] / max(pitch, 1e-6))", GAP_COUNT),
    _m("gap_never_uncertain", "keypoints/detector.py", "level_certain[sorted_kept] = counted",
       "level_certain[sorted_kept] = True", GAP_COUNT),
    _m("anchored_count_takes_a_transitional_level", "keypoints/level_anchors.py",
       "    scores[:, [k for k, name in enumerate(channels) if name in TRANSITIONAL]] = -strength\n", "",
       (f"{_ANCHORS}::test_anchor_pins_its_level_and_flattens_the_classifier",)),
    _m("crest_any_width", "keypoints/level_anchors.py",
       "span >= PELVIS_MIN_SPAN_MM", "span >= 0.0", CREST_WIDTH),
    _m("long_gap_not_grown_into", "keypoints/chain.py",
       "ok = (not skips and gap > TWO_LEVELS[1] * spacing", "ok = (False and gap > TWO_LEVELS[1] * spacing",
       LONG_GAP),
    # --- bone cement: read by the models as dense bone, found by the gate, a treated body asks for a look
    _m("cement_metal_read_as_bone", "implants.py",
       "if values.size * voxel_mm3 < CEMENT_MIN_MM3 or float(np.percentile(values, 90)) >= METAL_HU:",
       "if values.size * voxel_mm3 < CEMENT_MIN_MM3:", CEMENT),
    _m("cement_rod_read_as_bone", "implants.py", "        if thickness >= CEMENT_MIN_THICKNESS_MM:",
       "        if True:", CEMENT + CEMENT_SCREWS),
    _m("cement_no_opening", "implants.py", "eroded = ndi.binary_erosion(dense, structure=structure)",
       "eroded = dense", CEMENT),
    _m("cement_centre_line_reads_it", "spine/stage.py",
       "centreline = find_centreline(analysis.ct_for_models(), model)",
       "centreline = find_centreline(analysis.canonical, model)", CEMENT),
    _m("cement_detector_reads_it", "keypoints/stage.py",
       "detections = detect_vertebrae(straight.mid_sagittal(), spacing_mm=straight.spacing, straightened=straight,",
       "detections = detect_vertebrae(analysis.mid_sagittal, spacing_mm=straight.spacing, straightened=straight,",
       CEMENT),
    _m("cement_gate_blind", "quality/checks.py",
       "    if cement_mm3 >= CEMENT_MIN_MM3:  # a bolus, whether or not it reaches the metal's density (screws are",
       "    if False:  # a bolus, whether or not it reaches the metal's density (screws are", CEMENT_GATE),
    _m("cement_gate_metal_first", "quality/checks.py",
       "    if cement_mm3 >= CEMENT_MIN_MM3:  # a bolus, whether or not it reaches the metal's density (screws are",
       "    if cement_mm3 >= CEMENT_MIN_MM3 and score >= 0.5:  # a bolus, whether or not it reaches the metal's "
       "density (screws are", CEMENT_VERDICT),
    _m("cement_treated_not_flagged", "quality/stage.py", '                vertebra.extra[TREATED_KEY] = "bone cement"',
       "                pass", CEMENT_VERDICT),
    _m("cement_verdict_ignores_treatment", "verdict.py",
       '            return REVIEW, f"{reason}: look at it and at its neighbours"', "            pass", CEMENT_VERDICT),
    # --- the body's mid-sagittal plane (keypoints/refine.py body_midplane, keypoints/stage.py centroid)
    _m("plane_steepest_not_innermost", "keypoints/refine.py", "at = int(peaks[np.argmin(np.abs(across[peaks]))])",
       "at = int(np.argmax(gained))", PLANE),
    _m("plane_opposite_sides_move", "keypoints/refine.py", "        if walls * shift <= 0:\n            return None\n",
       "", PLANE),
    _m("plane_walls_ignored", "keypoints/refine.py", "    if walls is None:\n        return None\n",
       "    if walls is None or True:\n        return plane + shift\n", PLANE),
    _m("plane_larger_move", "keypoints/refine.py", "shift = min(shift, walls, key=abs)",
       "shift = max(shift, walls, key=abs)", PLANE),
    _m("plane_centroid_stays", "keypoints/stage.py", "centroid3d = centroid3d + (points3d - in_plane).mean(axis=0)",
       "centroid3d = centroid3d", PLANE),
    # --- keypoint post-processing (keypoints/nms.py, keypoints/stage.py)
    _m("nms_threshold_0_6", "keypoints/nms.py", "iou_threshold: float = 0.3,", "iou_threshold: float = 0.6,", NMS),
    _m("nms_threshold_plus_0_1", "keypoints/nms.py", "alive &= row <= iou_threshold",
       "alive &= row <= iou_threshold + 0.1", NMS),
    _m("nms_lowest_score_first", "keypoints/nms.py", "order = np.argsort(-scores, kind=\"stable\")",
       "order = np.argsort(scores, kind=\"stable\")", NMS),
    _m("nms_vote_unweighted", "keypoints/nms.py", "w = scores[order][voters]", "w = np.ones(int(voters.sum()))", NMS),
    _m("kp_model_nms_default", "keypoints/model.py", '"nms_iou": 0.3,', '"nms_iou": 0.6,', NMS),
    _m("kp_edge_check_removed", "keypoints/stage.py",
       "            if not np.all(geometry.contains(points3d, margin=-EDGE_MARGIN_VOXELS)):",
       "            if False:", KP_STAGE),
    _m("kp_confidence_max", "keypoints/stage.py", "confidence=float(min(detection.score, detection.label_confidence))",
       "confidence=float(max(detection.score, detection.label_confidence))", KP_STAGE),
    # --- levels (keypoints/labelling.py)
    _m("levels_viterbi_argmin", "keypoints/labelling.py", "    path[-1] = int(forward[-1].argmax())",
       "    path[-1] = int(forward[-1].argmin())", LABELLING),
    _m("levels_no_gap_penalty", "keypoints/labelling.py", "t[a, b] = -gap_penalty * abs(skip - expected[k])",
       "t[a, b] = 0.0", LABELLING),
    _m("levels_input_order_ignored", "keypoints/labelling.py", "        labels[original] = channels[path[rank]]",
       "        labels[rank] = channels[path[rank]]", LABELLING),
    _m("levels_consecutive_allows_repeat", "keypoints/labelling.py", "if positions[i] <= positions[i - 1]]",
       "if positions[i] < positions[i - 1]]", LABELLING),
    # --- the worklist (batch_runner.py)
    _m("worklist_severity_inverted", "batch_runner.py", "-(grade if isinstance(grade, int) else -1)",
       "(grade if isinstance(grade, int) else -1)", WORKLIST),
    _m("worklist_errors_first", "batch_runner.py", 'return (row.get("status") == "error",',
       'return (row.get("status") != "error",', WORKLIST),
    _m("worklist_max_grade_zero", "batch_runner.py", '"max_grade": summary["max_grade"],', '"max_grade": 0,',
       WORKLIST),
    _m("worklist_never_retry", "batch_runner.py", '(stored.get("status") == "error" and not retry_failed)',
       '(stored.get("status") == "error")', WORKLIST),
    _m("worklist_retry_default_off", "batch_runner.py", "retry_failed: bool = True,\n",
       "retry_failed: bool = False,\n", WORKLIST),
    # --- atomic writes (io/atomic.py)
    _m("atomic_plain_copy", "io/atomic.py", "        os.replace(temporary, target)\n",
       "        __import__('shutil').copyfile(temporary, target)\n", ATOMIC),
    _m("atomic_overwrite_ignored", "io/atomic.py", "if target.exists() and not overwrite:",
       "if target.exists() and overwrite is None:", ATOMIC),
    # --- the MRML bridge's coordinate conversions (geometry.py, mrml/)
    _m("lps_to_ras_identity", "geometry.py", "    points[..., :2] *= -1\n", "", GEOMETRY),
    _m("lps_to_ras_flips_z", "geometry.py", "    points[..., :2] *= -1\n", "    points[..., :3] *= -1\n", GEOMETRY),
    _m("lps_to_ras_flips_x_only", "geometry.py", "    points[..., :2] *= -1\n", "    points[..., :1] *= -1\n",
       GEOMETRY),
    _m("mrml_volume_ijk_to_ras_unflipped", "mrml/volumes.py", "    return _FLIP @ geometry.affine",
       "    return geometry.affine", MRML_VOLUMES),
    _m("mrml_volume_read_unflipped", "mrml/volumes.py", "    lps = _FLIP @ slicer.util.arrayFromVTKMatrix(matrix)",
       "    lps = slicer.util.arrayFromVTKMatrix(matrix)", MRML_VOLUMES),
    _m("mrml_markups_read_as_ras", "mrml/markups.py", "                position=ras_to_lps(ras),",
       "                position=ras,", MRML_MARKUPS),
    _m("mrml_markups_written_as_lps", "mrml/markups.py",
       "node.AddControlPoint(lps_to_ras(point.position).tolist(), point.label)",
       "node.AddControlPoint(list(point.position), point.label)", MRML_MARKUPS),
    # (radiographs.py's own ``_FLIP`` constant is never used -- the pixel -> RAS matrix comes from
    # volumes.ijk_to_ras_matrix -- so a mutation of it is equivalent; the direction of a created radiograph is
    # what places its pixels: columns anterior instead of posterior)
    _m("mrml_radiograph_columns_anterior", "mrml/radiographs.py",
       "RADIOGRAPH_DIRECTION = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])",
       "RADIOGRAPH_DIRECTION = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])", MRML_RADIOGRAPH),
]


def repository_files(root: Path) -> List[str]:
    """Tracked and untracked, not ignored files of the checkout (``git ls-files``)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         check=True, capture_output=True).stdout
    return sorted({name for name in out.decode().split("\0") if name and (root / name).is_file()})


def copy_repository(root: Path, target: Path) -> None:
    """Copy the checkout's files into ``target`` (never edits ``root``)."""
    for name in repository_files(root):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)


def run_tests(copy: Path, tests: Sequence[str], timeout: float) -> Tuple[str, float, str]:
    """Run ``tests`` in the copy: ("pass" | "fail" | "timeout", seconds, last output line)."""
    env = dict(os.environ)
    env.update(PYTHONPATH=str(copy), OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen",
               VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow", PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-header", *tests]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - started, ""
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return ("pass" if done.returncode == 0 else "fail"), time.perf_counter() - started, (lines[-1] if lines else "")


def check_import_from_copy(copy: Path) -> None:
    """Make sure the tests in the copy import the copy's package, not the checkout's (editable install)."""
    env = dict(os.environ, PYTHONPATH=str(copy))
    where = subprocess.run([sys.executable, "-c", f"import {PKG}; print({PKG}.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"the copy imports {PKG} from {where}, not from {copy}: mutations would not be seen")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mutations; print one line each, the kill rate and the survivors."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="run only these mutations (names)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per test run (default 300)")
    parser.add_argument("--min-kill-rate", type=float, default=0.9)
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.list:
        for m in mutations:
            print(f"{m.name:36s} {m.path:36s} {' '.join(m.tests)}")
        return 0
    if len({m.name for m in MUTATIONS}) != len(MUTATIONS):
        raise SystemExit("duplicate mutation names")

    workdir = Path(tempfile.mkdtemp(prefix="vf-mutation-"))
    copy = workdir / "repo"
    results: Dict[str, Tuple[str, float, str]] = {}
    try:
        copy_repository(REPO, copy)
        check_import_from_copy(copy)
        print(f"copy of {REPO} in {copy}; {len(mutations)} mutations", flush=True)
        baseline: Dict[Tuple[str, ...], str] = {}
        for tests in sorted({m.tests for m in mutations}):
            outcome, seconds, last = run_tests(copy, tests, args.timeout)
            baseline[tests] = outcome
            print(f"baseline {outcome:7s} {seconds:6.1f} s  {' '.join(tests)}  {last if outcome != 'pass' else ''}",
                  flush=True)
        for m in mutations:
            file = copy / m.path
            original = file.read_text(encoding="utf-8")
            count = original.count(m.old)
            if count != 1:
                results[m.name] = ("stale", 0.0, f"old text found {count} times in {m.path}")
            elif baseline[m.tests] != "pass":
                results[m.name] = ("invalid", 0.0, "its tests fail without the mutation")
            else:
                try:
                    file.write_text(original.replace(m.old, m.new), encoding="utf-8")
                    outcome, seconds, last = run_tests(copy, m.tests, args.timeout)
                finally:
                    file.write_text(original, encoding="utf-8")
                status = "survived" if outcome == "pass" else ("killed (timeout)" if outcome == "timeout" else "killed")
                results[m.name] = (status, seconds, last)
            status, seconds, last = results[m.name]
            print(f"{status:16s} {seconds:6.1f} s  {m.name:36s} {m.path}  [{last[:90]}]", flush=True)
    finally:
        if args.keep:
            print(f"copy kept in {copy}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    counted = {n: r for n, r in results.items() if r[0].startswith(("killed", "survived"))}
    killed = [n for n, r in counted.items() if r[0].startswith("killed")]
    survivors = [n for n, r in counted.items() if r[0] == "survived"]
    skipped = [n for n, r in results.items() if n not in counted]
    rate = len(killed) / len(counted) if counted else 0.0
    print(f"\nkill rate {len(killed)}/{len(counted)} = {100 * rate:.1f} %")
    print("survivors: " + (", ".join(survivors) if survivors else "none"))
    if skipped:
        print("not counted (stale or invalid): " + ", ".join(f"{n} ({results[n][0]}: {results[n][2]})"
                                                              for n in skipped))
    return 0 if rate >= args.min_kill_rate else 1


if __name__ == "__main__":
    raise SystemExit(main())
