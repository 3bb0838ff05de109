"""Exports of one analysis: segmentation (.seg.nrrd), overview figure, HTML report, output folder."""
