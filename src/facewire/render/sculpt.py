"""The default avatar's geometry, sculpted in code: a stylised deformed-ellipsoid head (large
cranium and eyes, round jaw, small chin and button nose) with a lip seam and a mouth cavity,
eyeballs inside lid shells, teeth, tongue, brows, a hair cap that frames the face, ears, and a
short neck with a hint of shoulders in a shirt.

Everything is a smooth function of a few constants, so the mesh is deterministic and mirror
symmetric (x → −x maps it onto itself vertex for vertex). `default_avatar` authors the morph
targets on top of the per-vertex tags this module records (which piece, which lip, jaw share).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import LinearNDInterpolator

__all__ = ["LANDMARKS", "Kind", "Landmarks", "Sculpt", "sculpt"]


class Kind:
    """Which piece a vertex belongs to (values of `Sculpt.kind`)."""

    SKIN, BAG, HAIR, BROW, LID_UP, LID_LOW, EYE, TEETH_UP, TEETH_LOW, TONGUE, NECK, EAR = range(12)


@dataclass(frozen=True)
class Landmarks:
    """Where the features sit at rest (metres, glTF axes; left = +X, the avatar's left)."""

    eye_x: float = 0.033
    eye_y: float = 0.020
    eye_z: float = 0.0565
    eye_radius: float = 0.0150
    seam_y: float = -0.040  # the line where the closed lips meet
    corner_x: float = 0.020  # half the mouth's width
    jaw_hinge: tuple[float, float, float] = (0.0, -0.004, -0.040)
    head_center: tuple[float, float, float] = (0.0, 0.024, -0.012)
    head_radii: tuple[float, float, float, float, float] = (0.079, 0.112, 0.090, 0.084, 0.100)
    # (x, y up, y down, z front, z back)
    brow_y: float = 0.047
    nose_y: float = -0.012  # the nose tip
    chin_y: float = -0.064  # the front of the chin
    cheek: tuple[float, float, float] = (0.037, -0.012, 0.066)


LANDMARKS = Landmarks()

# linear RGB
SKIN_RGB = np.array([0.60, 0.36, 0.27])
LIP_RGB = np.array([0.50, 0.17, 0.15])
HAIR_RGB = np.array([0.075, 0.034, 0.018])
IRIS_RGB = np.array([0.08, 0.26, 0.40])


@dataclass
class Sculpt:
    """The raw mesh and its per-vertex tags (mutable while being built; `default_avatar` freezes it)."""

    positions: np.ndarray  # (N, 3) float64
    colors: np.ndarray  # (N, 3) multiplier of the part's base colour
    kind: np.ndarray  # (N,) Kind
    lip: np.ndarray  # (N,) +1 upper-lip side of the seam, −1 lower side (skin and cavity), 0 elsewhere
    jaw: np.ndarray  # (N,) 0..1 how much a vertex follows the jaw
    eye: np.ndarray  # (N,) 0 none, 1 left, 2 right (eyeballs, lids)
    lid_az: np.ndarray  # (N,) lid vertices: azimuth about the eye's vertical axis (rad)
    lid_el: np.ndarray  # (N,) lid vertices: elevation at rest (rad)
    lid_s: np.ndarray  # (N,) lid vertices: 0 at the lid margin … 1 at the far edge of the shell
    lid_r: np.ndarray  # (N,) lid vertices: radius about the eye centre
    depth: np.ndarray  # (N,) cavity vertices: 0 at the lips … 1 at the back; tongue: 0 root … 1 tip
    src: np.ndarray  # (N,) cavity vertices: the lip vertex each grew from (−1 elsewhere)
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, pos: np.ndarray, kind: int, *, colors=None, lip=0.0, jaw=0.0, eye=0, **tags) -> int:
        start = len(self.positions)
        n = len(pos)
        self.positions = np.vstack([self.positions, pos])
        col = np.ones((n, 3)) if colors is None else np.broadcast_to(colors, (n, 3))
        self.colors = np.vstack([self.colors, col])
        self.kind = np.r_[self.kind, np.full(n, kind, np.int8)]
        self.lip = np.r_[self.lip, np.broadcast_to(lip, (n,))]
        self.jaw = np.r_[self.jaw, np.broadcast_to(jaw, (n,))]
        self.eye = np.r_[self.eye, np.broadcast_to(eye, (n,)).astype(np.int8)]
        for name in ("lid_az", "lid_el", "lid_s", "lid_r", "depth"):
            setattr(self, name, np.r_[getattr(self, name), np.broadcast_to(tags.get(name, 0.0), (n,))])
        self.src = np.r_[self.src, np.broadcast_to(tags.get("src", -1), (n,)).astype(np.int64)]
        return start

    def tris(self, part: str, tri: np.ndarray) -> None:
        self.parts.setdefault(part, []).append(np.asarray(tri, np.int64))


def _smooth(e0: float, e1: float, x):
    t = np.clip((np.asarray(x, float) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _g(d2):
    return np.exp(-d2)


def _warp(density, lo: float, hi: float, n: int) -> np.ndarray:
    """n+1 samples from lo to hi, spaced inversely to ``density`` (more where it is high)."""
    x = np.linspace(lo, hi, 4001)
    cdf = np.concatenate([[0], np.cumsum(0.5 * (density(x[1:]) + density(x[:-1])) * np.diff(x))])
    return np.interp(np.linspace(0, cdf[-1], n + 1), cdf, x)


def _grid_tris(rows: int, cols: int, index, wrap: bool) -> np.ndarray:
    """Quads of a rows×cols vertex grid (``index(i, j)`` → vertex) split into two triangles each."""
    out = []
    for i in range(rows - 1):
        for j in range(cols if wrap else cols - 1):
            j1 = (j + 1) % cols
            a, b, c, d = index(i, j), index(i, j1), index(i + 1, j), index(i + 1, j1)
            out += [(a, c, b), (b, c, d)]
    return np.array(out, np.int64)


# -- the skin --------------------------------------------------------------------------------------
def skin_surface(u: np.ndarray, v: np.ndarray, lm: Landmarks = LANDMARKS) -> np.ndarray:
    """The head's skin at longitude ``u`` (0 = front, +π/2 = the avatar's left) and latitude ``v``."""
    u, v = np.broadcast_arrays(np.asarray(u, float), np.asarray(v, float))
    rx, ry_up, ry_down, rz_front, rz_back = lm.head_radii
    cx, cy, cz = lm.head_center
    ry = np.where(v > 0, ry_up, ry_down)
    rz = np.where(np.cos(u) > 0, rz_front, rz_back)
    # the lower half is a superellipsoid: a rounder, squarer jaw than an ellipsoid's
    e = np.where(v < 0, 0.8, 1.0)
    cv, sv = np.cos(v), np.sin(v)
    cv, sv = np.sign(cv) * np.abs(cv) ** e, np.sign(sv) * np.abs(sv) ** e
    x = cx + rx * cv * np.sin(u)
    y = cy + ry * sv
    z = cz + rz * cv * np.cos(u)
    front = np.clip(np.cos(u), 0, 1) ** 2
    ax = np.abs(x)
    # a rounded jaw a little narrower than the cranium, the lower face brought forward to a soft chin
    x = x * (1 - 0.07 * _smooth(0.0, -0.07, y))
    z = z + 0.015 * front * _smooth(0.012, -0.028, y) + 0.010 * front * _smooth(-0.038, -0.075, y)
    z = z + 0.004 * _g((x / 0.017) ** 2 + ((y - lm.chin_y) / 0.010) ** 2)  # chin
    # forehead a little fuller, temples a little flatter
    z = z + 0.004 * front * _g(((y - 0.07) / 0.03) ** 2)
    # eye sockets and the brow ridge above them (each side from the same x, so they mirror exactly)
    x0, dx = x, np.zeros_like(x)
    for s in (1, -1):
        x = x0
        ex = x - s * lm.eye_x
        z = z - 0.004 * _g((ex / 0.013) ** 2 + ((y - lm.eye_y - 0.001) / 0.009) ** 2)
        # a flatter face plane around the eyes (an ellipsoid alone bends them round the sides)
        z = z + 0.006 * front * _g((ex / 0.022) ** 2 + ((y - lm.eye_y + 0.004) / 0.022) ** 2)
        z = z + 0.0035 * _g((ex / 0.022) ** 2 + ((y - lm.brow_y + 0.002) / 0.008) ** 2)
        # round cheeks
        kx, ky, _ = lm.cheek
        bump = _g(((x - s * kx) / 0.018) ** 2 + ((y - ky) / 0.016) ** 2)
        z = z + 0.005 * bump
        dx = dx + s * 0.003 * bump
        # nostril wings
        z = z + 0.0035 * _g(((x - s * 0.0095) / 0.0042) ** 2 + ((y - lm.nose_y + 0.005) / 0.0040) ** 2)
        # mouth-corner creases
        z = z - 0.0018 * _g(((x - s * (lm.corner_x + 0.001)) / 0.0032) ** 2 + ((y - lm.seam_y) / 0.004) ** 2)
    x = x0 + dx
    # nose: a small, soft ridge from between the eyes to a rounded button tip
    ny = lm.nose_y
    t = _smooth(lm.eye_y + 0.006, ny + 0.002, y) * (1 - _smooth(ny - 0.002, ny - 0.010, y))
    width = 0.0055 + 0.0030 * _smooth(lm.eye_y - 0.005, ny, y)
    z = z + (0.0015 + 0.0060 * t) * _g((x / width) ** 2) * _smooth(lm.brow_y, lm.eye_y + 0.006, y) * (y > ny - 0.014)
    z = z + 0.0045 * _g((x / 0.0062) ** 2 + ((y - ny) / 0.0060) ** 2)
    # lips: a muzzle, an upper and a lower lip bulge, a crease where they meet, corners turned up
    mouth_w = _g((x / 0.026) ** 4)
    z = z + 0.004 * _g((x / 0.032) ** 2 + ((y - lm.seam_y) / 0.022) ** 2)
    z = z + 0.0038 * mouth_w * _g(((y - lm.seam_y - 0.0042) / 0.0042) ** 2)
    z = z + 0.0042 * mouth_w * _g(((y - lm.seam_y + 0.0050) / 0.0048) ** 2)
    z = z - 0.0010 * mouth_w * _g(((y - lm.seam_y) / 0.0014) ** 2)
    y = y + 0.0016 * (ax / lm.corner_x) ** 2 * _g((ax / 0.03) ** 6) * _g(((y - lm.seam_y) / 0.012) ** 2)
    # keep the skin under the lids around the eye opening, so the eyes are never buried
    shell = 1.08 * lm.eye_radius
    for s in (1, -1):
        rho = np.hypot(x - s * lm.eye_x, y - lm.eye_y)
        under = lm.eye_z + np.sqrt(np.clip(shell ** 2 - rho ** 2, 0, None)) - 0.0006
        w = _smooth(0.95 * shell, 0.65 * shell, rho) * (z > lm.eye_z)
        z = z - w * np.clip(z - under, 0, None)
    return np.stack([x, y, z], axis=-1)


def _lip_colour(p: np.ndarray, lm: Landmarks) -> np.ndarray:
    x, y = p[:, 0], p[:, 1]
    dy = y - lm.seam_y - 0.0016 * (np.abs(x) / lm.corner_x) ** 2
    taper = np.clip(1 - (np.abs(x) / (lm.corner_x + 0.002)) ** 2, 0, 1) ** 0.5
    upper = 0.0056 * taper * (1 - 0.25 * _g((x / 0.004) ** 2))  # a hint of a cupid's bow
    lower = 0.0068 * taper
    height = np.where(dy > 0, upper, lower)
    inside = _smooth(0.0010, -0.0006, np.abs(dy) - height)
    return inside * (taper > 0)


def _skin(sc: Sculpt, lm: Landmarks, n_u: int, n_v: int) -> dict:
    def dens_u(u):
        return 1 + 3.0 * _g((u / 0.55) ** 2)

    half = _warp(dens_u, 0, np.pi, n_u // 2)
    us = np.concatenate([-half[::-1][:-1], half[:-1]])  # symmetric, contains 0, from −π
    t_seam = (lm.seam_y - lm.head_center[1]) / lm.head_radii[2]
    v_seam = np.arcsin(np.sign(t_seam) * np.abs(t_seam) ** (1 / 0.8))  # the lower half's superellipse
    v_eye = np.arcsin((lm.eye_y - lm.head_center[1]) / lm.head_radii[1])

    def dens_v(v):
        return 1 + 2.2 * _g(((v - v_eye) / 0.28) ** 2) + 3.5 * _g(((v - v_seam) / 0.16) ** 2)

    # top to bottom, poles apart, one row exactly on the seam
    x = np.linspace(-np.pi / 2, np.pi / 2, 4001)
    mass = np.cumsum(dens_v(x))
    n_below = round(n_v * np.interp(v_seam, x, mass) / mass[-1])
    vs = np.concatenate([_warp(dens_v, -np.pi / 2, v_seam, n_below), _warp(dens_v, v_seam, np.pi / 2, n_v - n_below)[1:]])
    vs = vs[::-1][1:-1]
    i_seam = int(np.argmin(np.abs(vs - v_seam)))
    uu, vv = np.meshgrid(us, vs)
    grid = skin_surface(uu, vv, lm).reshape(-1, 3)
    cols = len(us)
    rows = len(vs)
    top = skin_surface(0.0, np.pi / 2, lm).reshape(1, 3)
    bottom = skin_surface(0.0, -np.pi / 2, lm).reshape(1, 3)
    pos = np.vstack([grid, top, bottom])
    y_rel = pos[:, 1] - lm.seam_y
    lip_side = np.where(y_rel >= 0, 1.0, -1.0)
    lip_side[i_seam * cols:(i_seam + 1) * cols] = 1.0
    start = sc.add(pos, Kind.SKIN, lip=lip_side)
    # the slit: seam vertices between the corners get a lower-lip twin
    seam = grid[i_seam * cols:(i_seam + 1) * cols]
    slit = np.nonzero((np.abs(seam[:, 0]) < lm.corner_x - 1e-4) & (seam[:, 2] > 0))[0]
    twin_start = sc.add(grid[i_seam * cols + slit], Kind.SKIN, lip=-1.0)
    twin = {int(j): twin_start + k for k, j in enumerate(slit)}

    def at(i: int, j: int) -> int:
        return start + i * cols + j

    def at_low(i: int, j: int) -> int:  # the band below the seam uses the lower-lip twins
        if i == i_seam and j in twin:
            return twin[j]
        return at(i, j)

    tri = []
    for i in range(rows - 1):
        f = at_low if i == i_seam else at
        for j in range(cols):
            j1 = (j + 1) % cols
            a, b, c, d = f(i, j), f(i, j1), at(i + 1, j), at(i + 1, j1)
            tri += [(a, c, b), (b, c, d)]
    n_top, n_bot = start + rows * cols, start + rows * cols + 1
    for j in range(cols):
        j1 = (j + 1) % cols
        tri.append((n_top, at(0, j), at(0, j1)))
        tri.append((n_bot, at(rows - 1, j1), at(rows - 1, j)))
    sc.tris("skin", np.array(tri))
    # the lip loop, corner to corner along the upper lip, back along the lower lip
    jl, jr = int(slit.max()) + 1, int(slit.min()) - 1  # corner columns (+X is the avatar's left)
    upper = [at(i_seam, j) for j in range(jr, jl + 1)]
    lower = [twin[j] for j in range(jl - 1, jr, -1)]
    return {"loop": upper + lower, "n_upper": len(upper), "i_seam": i_seam, "cols": cols}


def _cavity(sc: Sculpt, lm: Landmarks, loop: list[int], n_upper: int) -> None:
    lp = sc.positions[loop]
    side = np.zeros(len(loop))
    side[1:n_upper - 1] = 1.0
    side[n_upper:] = -1.0
    # depth behind the lips, vertical opening, width factor, colour — inner lip, gums, cavity
    rings = [(0.0025, 0.0025, 0.99), (0.0040, 0.0080, 1.04), (0.0095, 0.0140, 1.22), (0.022, 0.0175, 1.38),
             (0.036, 0.0150, 1.30), (0.046, 0.0075, 1.00)]
    colours = [LIP_RGB / SKIN_RGB * 0.8, np.array([0.55, 0.42, 0.45]), np.ones(3), np.ones(3), np.ones(3),
               np.ones(3)]
    n = len(loop)
    idx = [np.array(loop)]
    jaw_share = np.where(side > 0, 0.0, np.where(side < 0, 1.0, 0.5))
    # a touch of the opening's roundness: vertices nearer the middle open further
    bulge = np.sqrt(np.clip(1 - (lp[:, 0] / (lm.corner_x * 1.02)) ** 2, 0, 1))
    for k, ((dz, dy, sx), col) in enumerate(zip(rings, colours)):
        p = lp.copy()
        p[:, 0] *= sx
        p[:, 1] = lm.seam_y + side * dy * (0.35 + 0.65 * bulge)
        p[:, 2] = lp[:, 2] - dz - 0.004 * (1 - bulge) * (k > 1)
        idx.append(np.arange(n) + sc.add(p, Kind.BAG, colors=col, lip=side, jaw=jaw_share,
                                         depth=(k + 1) / (len(rings) + 1), src=np.array(loop)))
    back = np.array([[0.0, lm.seam_y, lp[:, 2].max() - 0.055]])
    c = sc.add(back, Kind.BAG, jaw=0.5, depth=1.0)
    for k in range(len(idx) - 1):
        a, b = idx[k], idx[k + 1]
        quads = []
        for j in range(n):
            j1 = (j + 1) % n
            quads += [(a[j], b[j], a[j1]), (a[j1], b[j], b[j1])]  # continues the skin's winding
        sc.tris("skin" if k < 2 else "mouth", np.array(quads))
    last = idx[-1]
    sc.tris("mouth", np.array([(last[j], c, last[(j + 1) % n]) for j in range(n)]))


def _sphere(n_az: int, n_pol: int, pol=None) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere around +Z: ring k at polar angle pol[k] from +Z (poles excluded), pole vertices last."""
    pol = np.linspace(0, np.pi, n_pol + 1)[1:-1] if pol is None else np.asarray(pol)
    az = np.linspace(0, 2 * np.pi, n_az, endpoint=False)
    aa, pp = np.meshgrid(az, pol)
    ring = np.stack([np.sin(pp) * np.cos(aa), np.sin(pp) * np.sin(aa), np.cos(pp)], -1).reshape(-1, 3)
    pts = np.vstack([ring, [[0, 0, 1]], [[0, 0, -1]]])
    rows = len(pol)
    tri = list(_grid_tris(rows, n_az, lambda i, j: i * n_az + j, wrap=True))
    f, b = rows * n_az, rows * n_az + 1
    for j in range(n_az):
        j1 = (j + 1) % n_az
        tri.append((f, j, j1))
        tri.append((b, (rows - 1) * n_az + j1, (rows - 1) * n_az + j))
    tri = np.array(tri)
    return pts, _outward(pts, tri)


def _outward(pts: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
    vol = np.einsum("ij,ij->i", np.cross(b - a, c - a), a).sum()
    return tri if vol > 0 else tri[:, ::-1]


def _eyes(sc: Sculpt, lm: Landmarks, skin_z) -> dict:
    r = lm.eye_radius
    a_pupil, a_iris = 0.24, 0.60
    pol = np.concatenate([np.linspace(0, a_pupil, 3)[1:], np.linspace(a_pupil, a_iris, 5)[1:],
                          [a_iris + 0.05], np.linspace(a_iris + 0.2, np.pi, 7)[:-1]])
    unit, tri = _sphere(20, 0, pol)
    polar = np.arccos(np.clip(unit[:, 2], -1, 1))
    # the iris is a shallow dish under a clear cornea; stylised: flatten it a little
    scale = np.where(polar < a_iris + 0.01, 1 - 0.06 * (1 - polar / a_iris), 1.0)
    shade = np.where(polar < a_iris, 0.55 + 0.45 * (1 - ((polar - a_pupil) / (a_iris - a_pupil)) ** 2), 1.0)
    shade = np.where(polar < a_pupil + 1e-6, 1.0, shade)
    centres = []
    for s, which in ((1, 1), (-1, 2)):
        c = np.array([s * lm.eye_x, lm.eye_y, lm.eye_z])
        centres.append(tuple(c))
        start = sc.add(c + unit * scale[:, None] * r, Kind.EYE, colors=shade[:, None] * np.ones(3), eye=which)
        t = tri + start
        cent = polar[tri].max(axis=1)
        sc.tris("pupil", t[cent <= a_pupil + 1e-6])
        sc.tris("iris", t[(cent > a_pupil + 1e-6) & (cent <= a_iris + 1e-6)])
        sc.tris("sclera", t[cent > a_iris + 1e-6])
        _lids(sc, lm, c, s, which, skin_z)
    return {"centres": tuple(centres)}


LID_UP_OPEN_DEG = 26.0  # upper lid margin's elevation above the eye centre, mid-lid, at rest
LID_LOW_OPEN_DEG = -30.0
LID_CORNER_DEG = -4.0  # where the margins meet at the eye corners
LID_HALF_WIDTH_DEG = 68.0  # azimuth of the eye corners


def lid_margin_deg(az: np.ndarray, upper: bool) -> np.ndarray:
    """Rest elevation of a lid margin along its azimuth: an almond opening meeting at the corners."""
    t = np.clip(np.abs(az) / np.radians(LID_HALF_WIDTH_DEG), 0, 1)
    shape = np.cos(0.5 * np.pi * t) ** 0.8
    mid = LID_UP_OPEN_DEG if upper else LID_LOW_OPEN_DEG
    return LID_CORNER_DEG + (mid - LID_CORNER_DEG) * shape


def lid_point(centre, az, el, r, s, skin_z):
    """A lid vertex: on a shell about the eye near the margin, sinking onto the skin towards its far
    edge (``s`` → 1) so the lid grows out of the face without a visible rim."""
    p = np.asarray(centre) + np.stack([r * np.cos(el) * np.sin(az), r * np.sin(el), r * np.cos(el) * np.cos(az)], -1)
    under = skin_z(p[..., 0], p[..., 1]) - 0.0004
    w = _smooth(0.3, 1.0, s) * np.isfinite(under)
    p[..., 2] = np.where(w > 0, (1 - w) * p[..., 2] + w * np.nan_to_num(under), p[..., 2])
    return p


def _lids(sc: Sculpt, lm: Landmarks, c: np.ndarray, s: int, which: int, skin_z) -> None:
    r = lm.eye_radius
    n_az, n_s = 19, 7
    az = np.radians(np.linspace(-88, 88, n_az))
    for upper in (True, False):
        far = np.radians(75.0 if upper else -68.0)
        margin = np.radians(lid_margin_deg(az, upper))
        ss = np.concatenate([[0.0, 0.0], np.linspace(0.0, 1.0, n_s)[1:] ** 1.4])
        aa, sv = np.meshgrid(az, ss)
        el = margin[None, :] + sv * (far - margin[None, :])
        radius = np.full_like(el, r * (1.10 if upper else 1.07))
        radius[0] = r * 1.015  # the margin folds onto the eyeball, giving the lid a thickness
        # the shell swells a little over the eye's top, like a real lid over the cornea
        radius[1:] *= 1 + 0.02 * np.exp(-((el[1:] - np.radians(20 if upper else -20)) / 0.5) ** 2)
        pts = lid_point(c, aa.ravel() * s, el.ravel(), radius.ravel(), sv.ravel(), skin_z)
        col = np.ones((len(pts), 3))
        if upper:  # a dark lash line along the upper margin
            col[: 2 * n_az] = HAIR_RGB / SKIN_RGB * 1.2
        else:
            col[: n_az] = np.array([0.85, 0.70, 0.70])
        start = sc.add(pts, Kind.LID_UP if upper else Kind.LID_LOW, colors=col, eye=which,
                       lid_az=(aa * s).ravel(), lid_el=el.ravel(), lid_s=sv.ravel(), lid_r=radius.ravel())
        tri = _grid_tris(len(ss), n_az, lambda i, j, start=start: start + i * n_az + j, wrap=False)
        # face outwards (away from the eyeball centre), whatever the side's mirror did to the winding
        p = sc.positions
        a, b, cc = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
        out = np.einsum("ij,ij->i", np.cross(b - a, cc - a), (a + b + cc) / 3 - c)
        tri = np.where((out < 0)[:, None], tri[:, ::-1], tri)
        sc.tris("skin", tri)


def _teeth(sc: Sculpt, lm: Landmarks, lip_z: float) -> None:
    """Upper and lower arches just behind the lips (``lip_z``: the seam's front), the lower one
    behind the upper (an overbite), their edges below the seam so jawOpen shows the upper row."""
    n_arc = 29
    for upper in (True, False):
        half_w, depth = (0.0190, 0.017) if upper else (0.0172, 0.016)
        z0 = lip_z - (0.0062 if upper else 0.0100)
        theta = np.linspace(-1.25, 1.25, n_arc)
        cx, cz = half_w * np.sin(theta), z0 - depth * (1 - np.cos(theta))
        nx, nz = np.sin(theta) * half_w / depth, np.cos(theta)
        nrm = np.hypot(nx, nz)
        nx, nz = nx / nrm, nz / nrm
        arc = np.concatenate([[0], np.cumsum(np.hypot(np.diff(cx), np.diff(cz)))])
        arc -= arc[n_arc // 2]
        tooth_w = 0.0046
        gap = np.abs(((arc / tooth_w) + (0.5 if upper else 0.0)) % 1.0 - 0.5) * 2  # 0 mid-tooth, 1 at a gap
        height = 0.0095 if upper else 0.0085
        edge = lm.seam_y + (-0.0030 if upper else -0.0005)
        # cross-section (thickness across, height along y), a rounded rectangle
        sec_t = np.array([0.0013, 0.0017, 0.0015, 0.0, -0.0015, -0.0017, -0.0013, 0.0])
        sec_h = np.array([0.0, 0.25, 0.75, 1.0, 0.75, 0.25, 0.0, -0.02])
        m = len(sec_t)
        pts, cols = [], []
        for k in range(n_arc):
            scallop = 0.0009 * gap[k] ** 2
            h = sec_h * (height - scallop) + scallop
            y = edge + h if upper else edge - h
            x = cx[k] + sec_t * nx[k]
            z = cz[k] + sec_t * nz[k]
            pts.append(np.stack([x, y, z], -1))
            shade = 1 - 0.45 * gap[k] ** 6 - 0.15 * np.abs(theta[k]) / 1.25
            cols.append(np.full((m, 3), shade))
        pts = np.vstack(pts)
        cols = np.vstack(cols)
        start = sc.add(pts, Kind.TEETH_UP if upper else Kind.TEETH_LOW, colors=cols, jaw=0.0 if upper else 1.0)
        tri = list(_grid_tris(n_arc, m, lambda i, j, start=start, m=m: start + i * m + j, wrap=True))
        ends = sc.add(np.array([pts[:m].mean(0), pts[-m:].mean(0)]), Kind.TEETH_UP if upper else Kind.TEETH_LOW,
                      jaw=0.0 if upper else 1.0)
        for j in range(m):
            j1 = (j + 1) % m
            tri.append((ends, start + j1, start + j))
            tri.append((ends + 1, start + (n_arc - 1) * m + j, start + (n_arc - 1) * m + j1))
        tri = np.array(tri)
        # outwards = away from the arch's centre line (the caps: along the arch, away from its middle)
        p = sc.positions
        a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
        mid = (a + b + c) / 3
        ring = np.clip(np.round((tri.min(axis=1) - start) // m), 0, n_arc - 1)
        axis_pt = np.stack([cx[ring], np.full(len(ring), edge + (0.5 if upper else -0.5) * height), cz[ring]], -1)
        ref = mid - axis_pt
        ref[:, 1] = 0.0
        cap = tri.max(axis=1) >= ends
        tangent = np.stack([np.cos(theta[ring]), np.zeros(len(ring)), -np.sin(theta[ring]) * depth / half_w], -1)
        ref[cap] = tangent[cap] * np.sign(ring[cap] - n_arc / 2)[:, None]
        ref[~cap, 1] = (mid[~cap, 1] - axis_pt[~cap, 1]) * 0.3
        flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), ref) < 0
        sc.tris("teeth", np.where(flip[:, None], tri[:, ::-1], tri))


def _outward_about(p: np.ndarray, tri: np.ndarray, centre: np.ndarray) -> np.ndarray:
    a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
    vol = np.einsum("ij,ij->i", np.cross(b - a, c - a), a - centre).sum()
    return tri if vol > 0 else tri[:, ::-1]


def _tongue(sc: Sculpt, lm: Landmarks) -> None:
    unit, tri = _sphere(16, 12)
    centre = np.array([0.0, lm.seam_y - 0.0085, 0.048])
    radii = np.array([0.0135, 0.0055, 0.020])
    p = unit * radii
    p[:, 1] += 0.0022 * (1 - (unit[:, 0]) ** 2) * (unit[:, 1] > 1e-9)  # a rounded back
    p[:, 1] -= 0.0012 * np.exp(-(unit[:, 0] / 0.15) ** 2) * (unit[:, 1] > 1e-9)  # the midline groove
    tip = (unit[:, 2] + 1) / 2
    col = (0.8 + 0.2 * tip)[:, None] * np.ones(3)
    start = sc.add(p + centre, Kind.TONGUE, colors=col, jaw=1.0, depth=tip)
    sc.tris("tongue", tri + start)


def _brows(sc: Sculpt, lm: Landmarks, skin_z) -> None:
    n_t, n_s = 14, 5
    t = np.linspace(0, 1, n_t)
    sv = np.linspace(-1, 1, n_s)
    tt, ss = np.meshgrid(t, sv)
    for s in (1, -1):
        x = 0.0115 + 0.040 * tt
        y = lm.brow_y - 0.003 + 0.0075 * np.sin(np.pi * (0.25 + 0.75 * tt)) - 0.004 * tt ** 2
        thick = 0.0052 * (1 - 0.55 * tt ** 1.5) * (0.75 + 0.25 * np.sin(np.pi * np.clip(tt * 3, 0, 1)))
        y = y + ss * thick / 2
        z = skin_z(x, y) + 0.0011 * (1 - ss ** 2) - 0.0006
        pts = np.stack([s * x, y, z], -1).reshape(-1, 3)
        start = sc.add(pts, Kind.BROW)
        tri = _grid_tris(n_s, n_t, lambda i, j, start=start: start + i * n_t + j, wrap=False)
        p = sc.positions
        a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
        facing = np.cross(b - a, c - a)[:, 2]
        sc.tris("brows", np.where((facing < 0)[:, None], tri[:, ::-1], tri))


# the hairline's latitude (rad) against |longitude| (rad): a fringe over the forehead, locks down
# the temples in front of the ears, clear above the ears, down to the nape behind
_HAIRLINE = ((0.0, 0.36), (0.30, 0.40), (0.62, 0.33), (0.92, 0.16), (1.08, -0.26), (1.26, -0.24), (1.38, 0.14),
             (1.80, 0.16), (2.05, -0.05), (2.45, -0.55), (np.pi, -0.72))


def _hair(sc: Sculpt, lm: Landmarks) -> None:
    n_u, n_v = 48, 20
    us = np.linspace(-np.pi, np.pi, n_u, endpoint=False) + np.pi / n_u  # symmetric about u = 0
    vs = np.linspace(np.pi / 2, -np.pi / 2, n_v + 2)[1:-1]
    uu, vv = np.meshgrid(us, vs)
    base = skin_surface(uu, vv, lm)
    centre = np.array(lm.head_center)
    out = base - centre
    out /= np.linalg.norm(out, axis=-1, keepdims=True)
    knots = np.array(_HAIRLINE)
    # the cover is averaged across a little longitude too, so the locks' sides are soft, not steps
    cover = np.mean([_smooth(line - 0.07, line + 0.07, vv) for line in
                     (np.interp(np.abs(uu + du), knots[:, 0], knots[:, 1]) for du in np.linspace(-0.09, 0.09, 7))], axis=0)
    # volume: fuller on the crown and at the sides, framing the face
    thick = 0.008 + 0.007 * _smooth(0.0, 1.2, vv) + 0.003 * np.abs(np.sin(uu)) * _smooth(-0.4, 0.3, vv)
    off = -0.016 + (thick + 0.016) * cover ** 0.6
    pts = (base + out * off[..., None]).reshape(-1, 3)
    top = skin_surface(0.0, np.pi / 2, lm) + np.array([0, 0.015, 0])
    bottom = np.array(centre) + np.array([0, -0.03, -0.01])
    start = sc.add(np.vstack([pts, top, bottom]), Kind.HAIR)
    tri = list(_grid_tris(n_v, n_u, lambda i, j: start + i * n_u + j, wrap=True))
    nt, nb = start + n_v * n_u, start + n_v * n_u + 1
    for j in range(n_u):
        j1 = (j + 1) % n_u
        tri.append((nt, start + j, start + j1))
        tri.append((nb, start + (n_v - 1) * n_u + j1, start + (n_v - 1) * n_u + j))
    sc.tris("hair", _outward_about(sc.positions, np.array(tri), centre))


EAR_CENTRE = (0.079, 0.006, -0.016)  # the left ear's; the right one is its mirror


def _ears(sc: Sculpt, lm: Landmarks) -> None:
    unit, tri = _sphere(14, 10)
    p = unit * np.array([0.0065, 0.019, 0.012])
    # a cupped outer face (its middle pushed in) and a rounder top than lobe
    p[:, 0] -= 0.0035 * np.exp(-(unit[:, 1] / 0.6) ** 2 - (unit[:, 2] / 0.6) ** 2) * (unit[:, 0] > 0)
    p[:, 2] *= 1 + 0.25 * np.clip(unit[:, 1], 0, 1)
    lean = np.radians(15)  # leaning back
    rot = np.array([[1, 0, 0], [0, np.cos(lean), -np.sin(lean)], [0, np.sin(lean), np.cos(lean)]])
    turn = np.radians(-22)  # standing out from the head, the front turned forward
    roty = np.array([[np.cos(turn), 0, np.sin(turn)], [0, 1, 0], [-np.sin(turn), 0, np.cos(turn)]])
    left = p @ rot.T @ roty.T + np.array(EAR_CENTRE)
    for s in (1, -1):
        start = sc.add(left * np.array([s, 1, 1]), Kind.EAR, colors=np.array([1.0, 0.92, 0.92]))
        centre = np.array(EAR_CENTRE) * np.array([s, 1, 1])
        sc.tris("skin", _outward_about(sc.positions, tri + start, centre))


NECK_RADII = (0.031, 0.034)  # (x, z) of the neck below the jaw
SHIRT_FROM = 0.62  # where the shirt's collar starts, as a share of the way down the neck


def _neck(sc: Sculpt, lm: Landmarks) -> None:
    n_az, n_t = 28, 9
    t = np.linspace(0, 1, n_t)
    az = np.linspace(0, 2 * np.pi, n_az, endpoint=False)
    aa, tt = np.meshgrid(az, t)
    flare = _smooth(0.5, 1.0, tt) ** 1.4
    rx = NECK_RADII[0] + 0.068 * flare  # the neck widens into a hint of shoulders
    rz = NECK_RADII[1] + 0.018 * flare
    cz = -0.016 - 0.006 * flare
    yy = -0.025 - 0.105 * tt - 0.030 * flare * np.abs(np.sin(aa))  # sloping shoulders
    pts = np.stack([rx * np.sin(aa), yy, cz + rz * np.cos(aa)], -1).reshape(-1, 3)
    ends = [[0, -0.025, -0.016], [0, yy.min() + 0.005, -0.022]]
    start = sc.add(np.vstack([pts, ends]), Kind.NECK)
    tri = list(_grid_tris(n_t, n_az, lambda i, j, start=start: start + i * n_az + j, wrap=True))
    nt, nb = start + n_t * n_az, start + n_t * n_az + 1
    for j in range(n_az):
        j1 = (j + 1) % n_az
        tri.append((nt, start + j, start + j1))
        tri.append((nb, start + (n_t - 1) * n_az + j1, start + (n_t - 1) * n_az + j))
    tri = _outward_about(sc.positions, np.array(tri), np.array([0.0, -0.08, -0.02]))
    ring = (tri.min(axis=1) - start) // n_az  # the upper ring of each quad (caps: the pole's ring)
    shirt = (ring >= round(SHIRT_FROM * (n_t - 1))) & (tri.max(axis=1) != nt)
    sc.tris("skin", tri[~shirt])
    sc.tris("shirt", tri[shirt])


def sculpt(lm: Landmarks = LANDMARKS, n_u: int = 68, n_v: int = 54) -> tuple[Sculpt, dict]:
    """Build the default head: returns the mesh with its tags and facts the morph authoring needs."""
    empty = np.zeros(0)
    sc = Sculpt(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, np.int8), empty, empty, np.zeros(0, np.int8),
                empty, empty, empty, empty, empty, np.zeros(0, np.int64))
    info = _skin(sc, lm, n_u, n_v)
    skin_idx = np.nonzero(sc.kind == Kind.SKIN)[0]
    _cavity(sc, lm, info["loop"], info["n_upper"])
    sc.colors[skin_idx] = 1 - (1 - LIP_RGB / SKIN_RGB) * _lip_colour(sc.positions[skin_idx], lm)[:, None]
    # cheeks a touch rosier, nostrils dark
    p = sc.positions[skin_idx]
    for s in (1, -1):
        blush = _g(((p[:, 0] - s * 0.042) / 0.015) ** 2 + ((p[:, 1] + 0.008) / 0.011) ** 2)
        sc.colors[skin_idx] *= (1 - 0.16 * blush[:, None] * np.array([0.0, 1.0, 0.8]))
        nostril = _g(((p[:, 0] - s * 0.0058) / 0.0024) ** 2 + ((p[:, 1] - lm.nose_y + 0.0068) / 0.0020) ** 2)
        sc.colors[skin_idx] *= (1 - 0.75 * 0.55 * nostril[:, None] / 0.75)
    front = skin_idx[(sc.positions[skin_idx, 2] > 0.02)]
    interp = LinearNDInterpolator(sc.positions[front, :2], sc.positions[front, 2])

    def skin_z(x, y):
        return interp(np.abs(x), y)

    info["skin_z"] = skin_z
    info.update(_eyes(sc, lm, skin_z))

    _brows(sc, lm, skin_z)
    _hair(sc, lm)
    _ears(sc, lm)
    _neck(sc, lm)
    _teeth(sc, lm, float(sc.positions[info["loop"], 2].max()))
    _tongue(sc, lm)
    return sc, info
