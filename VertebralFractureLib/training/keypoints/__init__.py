"""Training and evaluation of the six-keypoint vertebra detector (Pisov et al. 2020, §3.2)."""
