"""One verdict per vertebra and per patient, from one written rule.

The Genant grade from the six keypoints is the measurement and decides (Genant et al. 1993; Pisov et al.
2020, eq. 1); the learned scores are second opinions that can only ask for a look, never grade:

* ``not assessed``: the quality gate did not let the vertebra through (its ``status_reason`` says why).
  Except: ``review`` when the gate withheld a height loss measured on it (its keypoints were not clearly on the
  endplates, :data:`UNCONFIRMED_GRADE_KEY`) and a *validated* learned score also says "fracture": two
  independent signals point at the same body, and a withheld collapse must not leave the patient "normal".
  Also ``review`` when that withheld loss is of grade 2-3 and was measured on CT slices that resolve the endplates
  (:data:`UNCONFIRMED_RESOLVED_KEY`): a real crush's endplates are irregular, which is what keeps its keypoints off
  them, and on such slices a loss of 25 % or more is not what a point or two off the edge makes (real fractured
  shapes drawn as CTs, ``benchmarks/bench_real_shapes.py``, 1-2 mm slices: 8 more of 36 fractured bodies flagged,
  none more of 105 normal ones; docs/findings.md, "A withheld crush on slices that resolve it").
  And ``review`` when the body holds bone cement (:data:`TREATED_KEY`): a vertebroplasty or kyphoplasty treats a
  fracture, so a patient whose only findings are treated bodies is not "normal", and the bodies beside a cemented
  one are the ones a reader looks at next.
* ``fracture``: Genant grade 2 or 3 (height loss of 25 % or more) on an assessed vertebra.
* ``review``: Genant grade 1 (mild, 20-25 %: the grade readers disagree on most), or grade 0 while a
  *validated* learned score is at or above its operating point (the scores disagree with the heights).
* ``normal``: grade 0 and no validated score disagrees.

A learned score is *validated* only when its false-positive rate on the real normal-looking vertebrae of the
reference set (``benchmarks/calibrate_real.py``, ``Testing/Data/real/reference``) is at most
:data:`MAX_REAL_FPR`; otherwise it is shown as "research" and does not enter the verdict. The figures in
:data:`SCORE_RULES` were measured with that command; re-run it after any model change and update them here.

Each modality has its own calibration (:func:`rules_for`): CT (:data:`SCORE_RULES`), a vertebra measured on a
mask (:data:`MASK_SCORE_RULES`) and one measured on a lateral view (:data:`RADIOGRAPH_SCORE_RULES`, the
lateral-view classifier's real false-positive rate on real sagittal slices).

The patient's verdict is the most severe of its vertebrae's (fracture > review > normal); a patient with no
assessed vertebra is ``not assessed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple

FRACTURE = "fracture"
REVIEW = "review"
NORMAL = "normal"
NOT_ASSESSED = "not assessed"
#: Verdicts from the most to the least severe (the worklist's order).
SEVERITY = (FRACTURE, REVIEW, NORMAL, NOT_ASSESSED)
#: Highest false-positive rate on real normal vertebrae for a learned score to enter the verdict.
MAX_REAL_FPR = 0.10
#: ``Vertebra.extra`` key: the Genant grade of a height loss that the quality gate measured but withheld because
#: the keypoints were not clearly on the endplates (:func:`VertebralFractureLib.quality.stage.withhold_grades`).
#: A real crush fracture's endplates are irregular, so the gate withholds exactly the bodies most likely to be
#: fractured (CTs drawn from real fractured vertebra masks, ``benchmarks/bench_real_shapes.py``: the VerSe grade-3
#: L1 withheld on every drawing, the patch classifier 0.76-0.90 on it).
UNCONFIRMED_GRADE_KEY = "unconfirmed_grade"
#: ``Vertebra.extra`` key: True when the withheld loss was measured on CT slices that resolve the body's endplates
#: (:func:`VertebralFractureLib.quality.stage.mark_resolved_unconfirmed_losses`); a grade 2-3 there asks for a look.
UNCONFIRMED_RESOLVED_KEY = "unconfirmed_loss_resolved"
#: Least unconfirmed grade that asks for a look on its own where the slices resolve the endplates (Genant grade 2:
#: a height loss of 25 % or more).
UNCONFIRMED_REVIEW_GRADE = 2
#: ``Vertebra.extra`` key: what treats the body ("bone cement"; :func:`VertebralFractureLib.quality.checks.
#: check_metal`), set by the quality stage; such a body is not graded and asks for a look.
TREATED_KEY = "treated_with"


@dataclass(frozen=True)
class ScoreRule:
    """A learned per-vertebra score, its operating point and its measured real false-positive rate.

    Attributes:
        field: the :class:`~VertebralFractureLib.schema.Vertebra` attribute.
        name: how the score is shown.
        threshold: operating point (score >= threshold means "fracture").
        real_fpr: false-positive rate at the threshold on the real normal-looking vertebrae, or None if not
            measured.
        real_n: number of real normal vertebrae it was measured on.
    """

    field: str
    name: str
    threshold: float
    real_fpr: Optional[float]
    real_n: int

    @property
    def validated(self) -> bool:
        """Whether the score may change a verdict (measured, and at most :data:`MAX_REAL_FPR`)."""
        return self.real_fpr is not None and self.real_n >= 10 and self.real_fpr <= MAX_REAL_FPR


#: Operating points: probability 0.5 for the classifier and the voxel map (the scale they are trained on),
#: 50 of 100 for the abnormality score. Real false-positive rates measured on 2026-12-07 with
#: ``OMP_NUM_THREADS=2 python benchmarks/calibrate_real.py`` on the reference set: 32 matched normal-looking
#: vertebrae (sample CT 6, TPTBox 2, chest CT 13, its two cardiac crops 11 -- the crops share the chest CT's
#: vertebrae, so they are not independent): classifier 3/32 at or above 0.5 (median 0.05, max 0.80: the sample CT's
#: L1 0.80 and L4 0.77, cardiac crop b's T11 0.59; the mean of three networks trained with body sizes up to 1.3 times
#: the generator's mean, ``weights/grading_full.pt``), voxel map 0/32 (max 0.37), abnormality 2/30 (median 21, max
#: 100). (2026-12-04: 2/32, 0/32, 5/30; 2026-12-03: 3/28, 0/28, 8/24.) Small and from three patients: the
#: classifier's three members alone gave 1, 6 and 4 of 32. The abnormality score reads the body's shape alone, so
#: its rate is also taken on the real normal shapes of the VerSe masks drawn as CTs (``OMP_NUM_THREADS=2 python
#: benchmarks/bench_real_shapes.py --seeds 6``, 105 bodies of two spines, 1-3 mm slices): 17 of 105 at or above 50
#: (classifier and voxel map 0 of 105); with the 2 of 30 above, 19 of 135, over :data:`MAX_REAL_FPR`, so it stays
#: out of the verdict (letting it in: review on 15 more of those 105 normal bodies, on 6 more of their 36 fractured).
SCORE_RULES: Tuple[ScoreRule, ...] = (
    ScoreRule("fracture_probability", "patch classifier (Husseini et al. 2020)", 0.5, 3 / 32, 32),
    ScoreRule("voxel_fracture_score", "voxel map (Nicolaes et al. 2019)", 0.5, 0 / 32, 32),
    ScoreRule("abnormality", "shape abnormality (Botros et al. 2022)", 50.0, 19 / 135, 135),
)


#: The same calibration for measurement from a vertebra mask (``source == "mask"``), where the abnormality
#: score sees the given mask instead of one segmented from the CT. Measured on 2026-12-03 with
#: ``OMP_NUM_THREADS=1 python benchmarks/bench_masks.py``: 18 real normal-looking mask vertebrae (VerSe
#: sub-verse004: the 6 its radiologists grade 0; sample001: the 12 whose mask shows no deformity), 0/18 at or
#: above 50 (median 25, max 43).
MASK_SCORE_RULES: Tuple[ScoreRule, ...] = (
    ScoreRule("abnormality", "shape abnormality (Botros et al. 2022)", 50.0, 0 / 18, 18),
)


#: The calibration of a vertebra measured on a lateral view (2D keypoints): its ``fracture_probability`` is the
#: lateral-view patch classifier's (:mod:`VertebralFractureLib.radiograph.fracture`), not the CT one's. Measured on
#: 2026-12-05 with ``OMP_NUM_THREADS=2 python benchmarks/bench_sagittal.py --all`` (line LEARNED SCORE) on the
#: thoracic and lumbar bodies the analysis found among the annotated ones of the 20 real sagittal CT slices (none
#: looks fractured; about ten patients, none of them among the real CTs the network saw as negatives): 8 of 113 at
#: or above 0.5 (median 0.00); as 8-bit PNG (``--as-png``) 6 of 79, as JPEG 70 3 of 80, in a bright frame 5 of 99.
#: Verdict "review" on 2 of 116 of those bodies.
RADIOGRAPH_SCORE_RULES: Tuple[ScoreRule, ...] = (
    ScoreRule("fracture_probability", "lateral-view patch classifier", 0.5, 8 / 113, 113),
)


def _lateral_view(vertebra: Any) -> bool:
    """Whether a vertebra was measured on a lateral view: its keypoints are 2D ``[column, row]`` points."""
    import numpy as np

    keypoints = getattr(vertebra, "keypoints", None)
    if keypoints is None:
        return False
    shape = np.shape(keypoints)
    return len(shape) == 2 and shape[-1] == 2


def rules_for(vertebra: Any) -> Tuple[ScoreRule, ...]:
    """The calibrated rules that apply to a vertebra.

    For one measured on a mask :data:`MASK_SCORE_RULES`, on a lateral view :data:`RADIOGRAPH_SCORE_RULES`, else (CT)
    :data:`SCORE_RULES`.
    """
    if getattr(vertebra, "source", None) == "mask":
        return MASK_SCORE_RULES
    return RADIOGRAPH_SCORE_RULES if _lateral_view(vertebra) else SCORE_RULES


def score_disagreements(vertebra: Any, rules: Iterable[ScoreRule] = SCORE_RULES) -> List[str]:
    """The validated scores of a vertebra that say "fracture" (at or above their operating point), as short phrases."""
    out = []
    for rule in rules:
        value = getattr(vertebra, rule.field, None)
        if rule.validated and value is not None and value >= rule.threshold:
            out.append(f"{rule.name} {value:.2f} >= {rule.threshold:g}")
    return out


def vertebra_verdict(vertebra: Any, rules: Optional[Iterable[ScoreRule]] = None) -> Tuple[str, str]:
    """``(verdict, reason)`` of one vertebra by the rule of this module.

    Args:
        vertebra: a :class:`~VertebralFractureLib.schema.Vertebra` (or any object with its fields).
        rules: the learned scores' rules; by default :func:`rules_for` the vertebra.

    """
    rules = rules_for(vertebra) if rules is None else rules
    if getattr(vertebra, "status", "assessed") != "assessed":
        reason = vertebra.status_reason or "not assessed"
        if (getattr(vertebra, "extra", None) or {}).get(TREATED_KEY):
            return REVIEW, f"{reason}: look at it and at its neighbours"
        unconfirmed = (getattr(vertebra, "extra", None) or {}).get(UNCONFIRMED_GRADE_KEY)
        agreeing = score_disagreements(vertebra, rules) if unconfirmed and unconfirmed >= 1 else []
        if agreeing:
            return REVIEW, f"{reason}; but {'; '.join(agreeing)}: look at it"
        if (unconfirmed and unconfirmed >= UNCONFIRMED_REVIEW_GRADE
                and (getattr(vertebra, "extra", None) or {}).get(UNCONFIRMED_RESOLVED_KEY)):
            return REVIEW, (f"{reason}; but a loss that large on slices that resolve the endplates may be a crush "
                            f"whose endplates are irregular: look at it")
        return NOT_ASSESSED, reason
    measure = vertebra.measure
    if measure is None:
        return NOT_ASSESSED, "the keypoints do not give valid heights"
    if measure.grade >= 2:
        return FRACTURE, f"Genant grade {measure.grade} ({measure.type}, G {measure.G:.2f})"
    if measure.grade == 1:
        return REVIEW, f"mild deformity (Genant grade 1, {measure.type}, G {measure.G:.2f}): confirm on the image"
    disagreeing = score_disagreements(vertebra, rules)
    if disagreeing:
        return REVIEW, "heights normal but " + "; ".join(disagreeing)
    return NORMAL, f"Genant grade 0 (G {measure.G:.2f})"


def patient_verdict(vertebrae: Iterable[Any], rules: Optional[Iterable[ScoreRule]] = None) -> Tuple[str, str]:
    """``(verdict, reason)`` of a patient: the most severe verdict of its vertebrae, with the levels.

    A "normal" patient's reason names the vertebrae not assessed on which the gate withheld a measured height loss of
    grade 2-3 (:data:`UNCONFIRMED_GRADE_KEY`; a withheld grade 1, the size of a point or two off an edge, is not
    named): "normal" holds for the assessed ones only, and a worklist must not read it as "no
    fracture anywhere" (the list of every vertebra not assessed is its own field, ``not_assessed``).
    """
    by_verdict: dict = {}
    unconfirmed = {}
    for vertebra in vertebrae:
        verdict, _ = vertebra_verdict(vertebra, rules)
        by_verdict.setdefault(verdict, []).append(vertebra.label)
        grade = (getattr(vertebra, "extra", None) or {}).get(UNCONFIRMED_GRADE_KEY)
        if verdict == NOT_ASSESSED and grade and grade >= UNCONFIRMED_REVIEW_GRADE:
            unconfirmed[vertebra.label] = grade
    for verdict in (FRACTURE, REVIEW):
        if verdict in by_verdict:
            return verdict, f"{verdict}: {', '.join(by_verdict[verdict])}"
    if NORMAL in by_verdict:
        reason = f"no deformity on {len(by_verdict[NORMAL])} assessed vertebrae"
        if unconfirmed:
            reason += "; a height loss measured but not confirmed on " + ", ".join(
                f"{label} (grade {grade})" for label, grade in unconfirmed.items())
        return NORMAL, reason
    return NOT_ASSESSED, "no vertebra could be assessed"
