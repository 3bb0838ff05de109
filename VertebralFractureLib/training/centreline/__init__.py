"""Training and evaluation of the spine centre-line network (Pisov et al. 2020, §3.1)."""
