"""The default avatar: closed where it should be, no degenerate triangles, mirror symmetric, and each
of the 52 ARKit targets moving its own region (and only its own side)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from facewire import arkit
from facewire.render.default_avatar import PART_NAMES, default_avatar
from facewire.render.sculpt import LANDMARKS, Kind, sculpt

STILL_M = 1e-7  # a vertex "does not move" below this
SEAM_Y, CORNER_X, CHIN_Y = LANDMARKS.seam_y, LANDMARKS.corner_x, getattr(LANDMARKS, "chin_y", -0.07)


@pytest.fixture(scope="module")
def avatar():
    return default_avatar()


@pytest.fixture(scope="module")
def tags(avatar):
    sc, _ = sculpt()
    np.testing.assert_allclose(sc.positions, avatar.positions, atol=1e-6)  # same vertex order
    return sc


def edges_balanced(tri: np.ndarray) -> bool:
    """Closed and consistently oriented: every directed edge appears once and its reverse once."""
    directed = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    forward = {tuple(e) for e in directed.tolist()}
    return len(forward) == len(directed) and all((b, a) in forward for a, b in forward)


def all_tris(avatar) -> np.ndarray:
    return np.concatenate([p.indices.astype(np.int64) for p in avatar.parts])


def test_parts_size_and_cache(avatar) -> None:
    assert default_avatar() is avatar
    assert tuple(p.name for p in avatar.parts) == PART_NAMES
    tri = all_tris(avatar)
    assert 5_000 <= len(tri) <= 25_000
    assert set(avatar.morph_targets) == set(arkit.NAMES) and avatar.missing_shapes == ()
    assert all(len(e) > 100 for e in avatar.eye_vertices)
    for eye, centre in zip(avatar.eye_vertices, avatar.eye_centers):
        r = np.linalg.norm(avatar.positions[eye] - centre, axis=1)
        assert r.max() < 0.02 and r.min() > 0.008  # a ball about its centre


def test_no_degenerate_triangles_and_unit_normals(avatar) -> None:
    p = avatar.positions.astype(np.float64)
    tri = all_tris(avatar)
    area = 0.5 * np.linalg.norm(np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]]), axis=1)
    assert area.min() > 1e-10, area.min()  # 1e-10 m² = 0.1 mm²·1e-3
    assert len({tuple(sorted(t)) for t in tri.tolist()}) == len(tri)  # no triangle twice
    np.testing.assert_allclose(np.linalg.norm(avatar.normals, axis=1), 1.0, atol=1e-5)


def test_closed_pieces_are_watertight(avatar, tags) -> None:
    tri = all_tris(avatar)
    kind = tags.kind[tri]
    groups = {
        "skin and mouth cavity": (Kind.SKIN, Kind.BAG),
        "eyeballs": (Kind.EYE,), "hair": (Kind.HAIR,), "upper teeth": (Kind.TEETH_UP,),
        "lower teeth": (Kind.TEETH_LOW,), "tongue": (Kind.TONGUE,), "neck": (Kind.NECK,), "ears": (Kind.EAR,),
    }
    for name, kinds in groups.items():
        sel = np.isin(kind, kinds).all(axis=1)
        assert sel.sum() > 0 and edges_balanced(tri[sel]), name
    # the skin faces outwards: the signed volume of skin + cavity is positive
    sel = np.isin(kind, (Kind.SKIN, Kind.BAG)).all(axis=1)
    p = avatar.positions.astype(np.float64)
    a, b, c = (p[tri[sel, k]] for k in range(3))
    assert np.einsum("ij,ij->i", np.cross(b - a, c - a), a).sum() > 0


def mirror_index(avatar, tags) -> np.ndarray:
    key = np.c_[avatar.positions, tags.kind, tags.lip]  # lip twins coincide; the seam side tells them apart
    dist, idx = cKDTree(key).query(key * [-1, 1, 1, 1, 1])
    assert dist.max() < 1e-5
    return idx


def test_mirror_pairs_are_mirror_images(avatar, tags) -> None:
    mirror = mirror_index(avatar, tags)
    for name in arkit.NAMES:
        twin = arkit.MIRROR[name]
        if name in ("jawLeft", "mouthLeft"):
            twin = name.replace("Left", "Right")
        got = avatar.morph_targets[name][mirror] * [-1, 1, 1]
        np.testing.assert_allclose(got, avatar.morph_targets[twin], atol=1e-6, err_msg=name)


def test_left_shapes_stay_on_the_left(avatar) -> None:
    x = avatar.positions[:, 0]
    for name in arkit.NAMES:
        if not name.endswith("Left") or name in ("jawLeft", "mouthLeft"):
            continue
        moved = np.linalg.norm(avatar.morph_targets[name], axis=1)
        assert moved[x < -0.008].max() < STILL_M, name  # a soft blend across the midline, then still
        assert moved.max() > 0.001, name  # and each moves something visibly (> 1 mm)


def test_every_target_moves_visibly_and_differently(avatar) -> None:
    flat = np.stack([avatar.morph_targets[n].ravel() for n in arkit.NAMES])
    reach = np.abs(flat).max(axis=1)
    assert (reach > 0.0015).all(), [n for n, r in zip(arkit.NAMES, reach) if r <= 0.0015]
    gaps = np.linalg.norm(flat[:, None] - flat[None], axis=2) + np.eye(52)
    assert gaps.min() > 1e-3


def test_jaw_open_drops_chin_and_lower_teeth_only(avatar, tags) -> None:
    d = avatar.morph_targets["jawOpen"]
    p = avatar.positions
    skin = tags.kind == Kind.SKIN
    chin = skin & (np.abs(p[:, 0]) < 0.01) & (p[:, 1] < CHIN_Y + 0.004) & (p[:, 2] > 0.04)
    assert chin.sum() > 3 and (d[chin, 1] < -0.008).all()
    assert (d[tags.kind == Kind.TEETH_LOW, 1] < -0.008).all()
    assert np.abs(d[tags.kind == Kind.TEETH_UP]).max() < STILL_M
    assert np.abs(d[(tags.kind == Kind.SKIN) & (p[:, 1] > 0.0)]).max() < 1e-4  # the upper face stays
    # the lips part: the lower lip's twins on the seam drop away from the upper lip's
    low = (tags.kind == Kind.SKIN) & (tags.lip < 0) & (np.abs(p[:, 1] - SEAM_Y) < 0.001) & (np.abs(p[:, 0]) < 0.01) & (p[:, 2] > 0)
    assert low.sum() > 2 and (d[low, 1] < -0.012).all()


def test_blink_closes_the_left_upper_lid_over_the_eye_centre(avatar, tags) -> None:
    d = avatar.morph_targets["eyeBlinkLeft"]
    moved = np.linalg.norm(d, axis=1) > STILL_M
    assert set(np.unique(tags.kind[moved])) <= {Kind.LID_UP, Kind.LID_LOW} and (tags.eye[moved] == 1).all()
    cy = avatar.eye_centers[0][1]
    upper = (tags.kind == Kind.LID_UP) & (tags.eye == 1)
    margin = upper & (tags.lid_s == 0) & (np.abs(tags.lid_az) < 0.3)  # the lid's edge in front of the pupil
    assert margin.sum() >= 2
    closed = avatar.positions[margin] + d[margin]
    assert (closed[:, 1] < cy).all() and (avatar.positions[margin, 1] > cy).all()
    assert (d[upper & (tags.lid_s < 0.5), 1] <= 1e-9).all()  # the upper lid only comes down
    # the closed upper margin lies in front of the eyeball all the way (covers it)
    r = np.linalg.norm(closed - avatar.eye_centers[0], axis=1)
    assert (r > np.linalg.norm(avatar.positions[avatar.eye_vertices[0]] - avatar.eye_centers[0], axis=1).max()).all()


@pytest.mark.parametrize(("name", "where", "axis", "sign"), [
    ("mouthSmileLeft", "left_corner", 1, 1), ("mouthFrownLeft", "left_corner", 1, -1),
    ("mouthStretchLeft", "left_corner", 0, 1), ("browInnerUp", "inner_brow", 1, 1),
    ("browDownLeft", "left_brow", 1, -1), ("tongueOut", "tongue_tip", 2, 1),
    ("mouthPucker", "lips_front", 2, 1), ("jawForward", "chin", 2, 1), ("jawLeft", "chin", 0, 1),
])
def test_shapes_move_their_region_the_right_way(avatar, tags, name, where, axis, sign) -> None:
    p, k = avatar.positions, tags.kind
    regions = {
        "left_corner": (k == Kind.SKIN) & (np.hypot(p[:, 0] - CORNER_X, p[:, 1] - SEAM_Y) < 0.003),
        "inner_brow": (k == Kind.BROW) & (np.abs(p[:, 0]) < 0.02),
        "left_brow": (k == Kind.BROW) & (p[:, 0] > 0.02),
        "tongue_tip": (k == Kind.TONGUE) & (tags.depth > 0.9),
        "lips_front": (k == Kind.SKIN) & (np.abs(p[:, 0]) < 0.008) & (np.abs(p[:, 1] - SEAM_Y) < 0.004),
        "chin": (k == Kind.SKIN) & (np.abs(p[:, 0]) < 0.01) & (p[:, 1] < CHIN_Y + 0.004) & (p[:, 2] > 0.04),
    }
    sel = regions[where]
    assert sel.sum() >= 2
    assert (sign * avatar.morph_targets[name][sel, axis] > 0.001).all(), name


def _dihedral_deg(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Angle between the normals of each pair of triangles sharing an edge."""
    n = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    owner: dict[tuple[int, int], int] = {}
    pairs = []
    for t, (a, b, c) in enumerate(tri.tolist()):
        for e in ((a, b), (b, c), (c, a)):
            key = (min(e), max(e))
            if key in owner:
                pairs.append((owner[key], t))
            else:
                owner[key] = t
    i, j = np.array(pairs).T
    return np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", n[i], n[j]), -1, 1)))


@pytest.mark.parametrize("name", ["jawOpen", "jawLeft", "mouthClose"])
def test_jaw_shapes_leave_no_crease_on_the_cheeks(avatar, tags, name) -> None:
    """Off the lips the jaw's share blends smoothly: moving it folds no edge on the cheeks."""
    p = avatar.positions.astype(np.float64)
    tri = all_tris(avatar)
    mid = p[tri].mean(axis=1)
    cheek = ((tags.kind[tri] == Kind.SKIN).all(axis=1) & (np.abs(mid[:, 0]) > 1.2 * CORNER_X)
             & (np.abs(mid[:, 1] - SEAM_Y) < 0.02) & (mid[:, 2] > 0.02))
    weight = {"mouthClose": {"jawOpen": 1.0, "mouthClose": 1.0}}.get(name, {name: 1.0})
    moved = p + sum(w * avatar.morph_targets[n] for n, w in weight.items())
    before, after = _dihedral_deg(p, tri[cheek]), _dihedral_deg(moved, tri[cheek])
    assert np.abs(after - before).max() < 12.0, name  # a crease folds edges by tens of degrees
