"""Training and evaluation of the contextual shape model (Botros et al. 2022)."""
