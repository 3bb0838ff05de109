import numpy as np
import pytest

from VertebralFractureLib.spine.curve import SpineCurve, rotation_minimising_frames


def _scoliotic(n=80):
    z = np.linspace(180, -180, n)
    return np.stack([25 * np.sin(z / 70), -10 + 20 * np.cos(z / 90), z], axis=1)


def test_uniform_arc_length_and_orthonormal_frames():
    curve = SpineCurve.from_points(_scoliotic(), step=1.5)
    gaps = np.linalg.norm(np.diff(curve.points, axis=0), axis=1)
    assert np.allclose(gaps, 1.5, atol=2e-3)
    for a, b in ((curve.tangents, curve.anterior), (curve.tangents, curve.left), (curve.anterior, curve.left)):
        assert np.abs(np.einsum("ij,ij->i", a, b)).max() < 1e-9
    # (left, posterior, -tangent) right-handed, like LPS (x, y, z)
    assert np.allclose(np.cross(curve.left, curve.posterior), -curve.tangents, atol=1e-9)


def test_orientation_superior_first_and_anterior_points_anteriorly():
    points = _scoliotic()[::-1]  # given inferior -> superior
    curve = SpineCurve.from_points(points, step=1.0)
    assert curve.points[0, 2] > curve.points[-1, 2]
    assert np.all(curve.tangents[:, 2] < 0)
    assert curve.anterior[:, 1].max() < -0.9  # LPS -y is anterior
    assert curve.left[:, 0].min() > 0.8  # +x is the patient's left


def test_straight_vertical_line_gives_lps_axes():
    curve = SpineCurve.from_points(np.array([[5.0, 2.0, 50.0], [5.0, 2.0, -50.0]]), step=2.0)
    assert curve.n == 51
    assert np.allclose(curve.left, [1, 0, 0])
    assert np.allclose(curve.posterior, [0, 1, 0])
    assert np.allclose(curve.tangents, [0, 0, -1])


def test_double_reflection_matches_helix_rotation_minimising_frame():
    # helix x = a cos t, y = a sin t, z = -c t: an RMF rotates against the Frenet frame at the torsion rate
    a, c = 40.0, 25.0
    t = np.linspace(0, 3 * np.pi, 3000)
    points = np.stack([a * np.cos(t), a * np.sin(t), -c * t], axis=1)
    speed = np.hypot(a, c)
    tangents = np.stack([-a * np.sin(t), a * np.cos(t), -c * np.ones_like(t)], axis=1) / speed
    frenet = np.stack([-np.cos(t), -np.sin(t), np.zeros_like(t)], axis=1)
    normals = rotation_minimising_frames(points, tangents, frenet[0])
    angle = np.unwrap(np.arctan2(np.einsum("ij,ij->i", np.cross(frenet, normals), tangents),
                                 np.einsum("ij,ij->i", frenet, normals)))  # fmt: skip
    arc = t * speed
    torsion = -c / (a**2 + c**2)
    assert np.allclose(angle, -torsion * arc, atol=2e-3)


def test_planar_sagittal_curve_has_no_twist():
    z = np.linspace(200, -200, 50)
    points = np.stack([np.zeros_like(z), 30 * np.sin(z / 100), z], axis=1)
    curve = SpineCurve.from_points(points, step=1.0, twist_sigma_mm=0.0)
    assert np.allclose(curve.left, [1, 0, 0], atol=1e-9)
    assert np.abs(curve.anterior[:, 0]).max() < 1e-9


def test_margin_and_confidence():
    points = _scoliotic(20)
    curve = SpineCurve.from_points(points, step=1.0, margin_mm=10.0, confidence=np.linspace(0.2, 0.8, 20))
    plain = SpineCurve.from_points(points, step=1.0)
    assert curve.n == plain.n + 20
    assert np.allclose(curve.points[10], plain.points[0])
    assert curve.confidence[:10].max() == 0
    assert 0.15 < curve.confidence[10] < 0.3 and 0.7 < curve.confidence[-11] < 0.85


def test_position_is_continuous_and_extrapolates_straight():
    curve = SpineCurve.from_points(_scoliotic(), step=1.0)
    assert np.allclose(curve.position(np.array([0.0, 3.0])), curve.points[[0, 3]])
    assert np.allclose(curve.position(np.array(-5.0)), curve.points[0] - 5 * curve.tangents[0])
    assert np.allclose(curve.position(np.array(curve.length + 2)), curve.points[-1] + 2 * curve.tangents[-1])


@pytest.mark.parametrize("bad", [np.zeros((1, 3)), np.zeros((4, 2)), np.array([[0, 0, 0], [0, 0, np.nan]])])
def test_bad_points_raise(bad):
    with pytest.raises(ValueError, match=r"needs at least two distinct points"
                                         r"|must be an \(N, 3\) array of LPS mm, got shape \(4, 2\)"
                                         r"|contain non-finite values"):
        SpineCurve.from_points(bad)
