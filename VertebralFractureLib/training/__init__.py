"""The workbench: everything that trains, evaluates and builds data for the shipped stages.

One folder per model, with the same file names for the same roles (``train.py``, ``evaluate.py``, ``data.py``,
``losses.py``, ``metrics.py``, ``figures.py``). Nothing here runs during an analysis: the runtime packages never
import it (``Testing/Python/test_layout.py`` checks this on the sample CT).

    centreline   spine centre-line network (Pisov et al. 2020, §3.1)
    keypoints    vertebra detector with six keypoints (Pisov et al. 2020, §3.2)
    levels       level classifier on 3D anatomical cues
    grading      grading-loss fracture classifier (Husseini et al. 2020)
    voxelmap     dual-pathway voxel fracture map (Nicolaes et al. 2019)
    abnormality  contextual shape model and abnormality score (Botros et al. 2022)
    radiograph   radiograph level centroids (Gartland et al. 2025) and radiograph detector
"""
