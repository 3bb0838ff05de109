"""Constants of the Nicolaes et al. 2019, §3.2 network that need no torch (grid sizes, class names)."""

#: Subsampling factor of the second pathway (Nicolaes et al. 2019, §3.2).
FACTOR = 3
#: Context each side, in voxels, that an output voxel needs (3D variant: 8 layers x 1 x factor 3).
MARGIN = 8 * FACTOR
#: Class indices of the output (Nicolaes et al. 2019, §3.3: background, normal, fracture).
CLASSES = ("background", "normal", "fracture")
BACKGROUND, NORMAL, FRACTURE = 0, 1, 2
#: Label of voxels left out of the loss.
IGNORE = 255
#: The three models of Nicolaes et al. 2019, Table 1.
VARIANTS = ("3d", "5slices", "1slice")
