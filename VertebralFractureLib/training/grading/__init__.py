"""Training of the grading-loss classifier: losses, three-stage regime, probe, ablation (Husseini et al. 2020)."""
