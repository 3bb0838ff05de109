import numpy as np
import SimpleITK as sitk

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.images import image_from_array
from VertebralFractureLib.spine import straighten
from VertebralFractureLib.spine.centreline import Centreline
from VertebralFractureLib.training.centreline.figures import overview_figure


def test_overview_png_is_written(tmp_path):
    geometry = ImageGeometry((30, 25, 40), (2.0, 2.0, 2.5), (-30.0, -25.0, 0.0), np.eye(3))
    array = np.full((40, 25, 30), -800, np.int16)
    array[:, 10:15, 12:18] = 400
    image = sitk.DICOMOrient(image_from_array(array, geometry), "RAS")
    z = np.linspace(95, 5, 30)
    points = np.column_stack([np.zeros_like(z), np.full_like(z, -1.0), z])
    centreline = Centreline(points, np.ones(30), z, points, np.ones(30), np.ones(30))
    straightened = straighten(image, centreline, spacing=1.0, half_width_mm=20.0)
    path = overview_figure(image, centreline, straightened, tmp_path / "o.png", "t", truth_points=points[::10])
    picture = sitk.ReadImage(str(path))
    assert picture.GetSize()[0] > 200 and picture.GetSize()[1] > 200
