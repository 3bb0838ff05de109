"""Training and evaluation of the dual-pathway voxel fracture map (Nicolaes et al. 2019)."""
