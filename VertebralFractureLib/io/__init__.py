"""Reading and writing: images, VerSe, annotations, CTLungCa-500 files, Slicer markups, tables.

Every writer goes through :mod:`VertebralFractureLib.io.atomic`, so an export is never half-written.
"""
