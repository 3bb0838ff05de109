"""Small neural-network building blocks shared by the models of the project.

Modules:
    unet: a small U-Net (2D or 3D) used by the centre-line and keypoint networks.
    device: choose CUDA when available, else CPU, and cap CPU threads.
    weights: save / load model weights with a SHA-256 manifest (``VertebralFractureLib/weights``).

Torch is imported only by ``unet`` (and lazily by the others), so importing this package stays cheap
for modules that only need :mod:`weights` paths.
"""
