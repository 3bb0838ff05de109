"""What the Slicer module declares: the methods it cites and the Slicer version it needs (Qt-free)."""

from __future__ import annotations

from typing import Tuple

#: The oldest Slicer the module runs on: the Genant table uses the table API of Slicer 5.6
#: (typed columns through ``vtkMRMLTableNode`` schema, ``parameterNodeWrapper`` GUI binding).
MINIMUM_SLICER_VERSION: Tuple[int, int] = (5, 6)

PAPERS = (
    'Husseini M, Sekuboyina A, et al. "Grading loss: a fracture grade-based metric loss for vertebral fracture '
    'detection." MICCAI 2020 (fracture classifier).',
    'Pisov M, Kondratenko V, et al. "Keypoints localization for joint vertebra detection and fracture severity '
    'quantification." MICCAI 2020 (centre-line, six keypoints, Genant measures).',
    'Nicolaes J, Raeymaeckers S, et al. "Detection of vertebral fractures in CT using 3D convolutional neural '
    'networks." 2019 (voxel fracture map).',
    'Botros M, Rutten M, van Laarhoven T, Lessmann N. "A vertebral compression fracture score based on deep '
    'generative contextual modeling." MIDL 2022 (shape abnormality 0-100).',
    'Gartland C, Koromani F, Healy J, Roshchupkin G, Rivadeneira F, Redmond SJ. "Tailoring loss to boost vertebra '
    'centroid localization and classification in sagittal spinal radiographs." MIDL 2025 (radiograph centroids).',
)


def version_supported(major: int, minor: int) -> bool:
    """Whether Slicer ``major.minor`` is at least :data:`MINIMUM_SLICER_VERSION`."""
    return (int(major), int(minor)) >= MINIMUM_SLICER_VERSION


def version_problem(major: int, minor: int) -> str:
    """One line for the user when the running Slicer is too old ("" when it is recent enough)."""
    if version_supported(major, minor):
        return ""
    need = ".".join(str(v) for v in MINIMUM_SLICER_VERSION)
    return f"Vertebral Fracture needs Slicer {need} or later (this is Slicer {major}.{minor}); please update Slicer."


#: The module's help (Help & Acknowledgement section).
HELP_TEXT = (
    "Finds vertebrae in a CT or a lateral radiograph (a one-slice volume), places six keypoints per "
    "vertebral body, measures the anterior, middle and posterior heights and grades osteoporotic compression "
    "fractures the Genant way (G = min/max height). Drag keypoints to correct them: the measures and the "
    "table update. "
    "See docs/slicer_module.md in the extension's repository.<br><br>Methods:<ul>"
    + "".join(f"<li>{paper}</li>" for paper in PAPERS)
    + "</ul>Not for clinical use."
)
#: The module's acknowledgement.
ACKNOWLEDGEMENT = (
    "Built on 3D Slicer, SimpleITK and PyTorch. Methods from the papers listed in the help; test data from "
    "VerSe (Sekuboyina et al.) and TotalSegmentator (Wasserthal et al.) under their licences."
)
