"""VertebralFractureLib: find, measure and correct vertebral compression fractures.

The core of the VertebralFracture 3D Slicer extension, usable on its own as a Python package
and through the ``vertebral-fracture`` command. The core never imports ``slicer`` or ``qt``;
the :mod:`VertebralFractureLib.mrml` bridge is the only place that speaks MRML.

Sub-packages:
    genant: heights, Genant index G, grade and type, neighbour-relative reduction.
    levels: vertebra level names and VerSe label numbers.
    schema: the versioned result schema shared by CLI, bridge and exports.
    geometry: image geometry, voxel <-> LPS mm, canonical orientation.
    io: images, VerSe, annotations, CTLungCa-500 six-point files, Slicer markups, atomic writes.
    synth: synthetic spines with complete ground truth.
    spine: spine centre-line and straightening (Pisov et al. 2020, section 3.1).
    mrml: result object <-> Slicer scene nodes.
    cli: the ``vertebral-fracture`` command.
"""

__version__ = "0.1.0"
