"""Training and evaluation of the radiograph models: level centroids (Gartland et al. 2025) and detector."""
