"""Reading and writing: images, VerSe files, annotations, CTLungCa-500 six-point files, Slicer
markups and tables. Every writer goes through :func:`VertebralFractureLib.io.atomic.atomic_write`
so an export is never half-written.
"""
