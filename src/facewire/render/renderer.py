"""The offscreen renderer: an `AvatarMesh` posed by a `FaceFrame`, drawn with OpenGL 3.3 on a headless
EGL context (Mesa llvmpipe on a CPU, the GPU's driver where there is one) into 8-bit sRGB pixels.

Per frame only what changed travels: morphed vertices (the range the avatar's targets touch, and
only when the weights changed) and a few uniforms (head and eye rotations, done in the vertex
shader). The framebuffers and the pixel buffer are made once.

Edge smoothing (``antialias``) is chosen per backend. On a GPU, ``"msaa"`` (4 samples) is nearly
free. On llvmpipe multisampling costs about as much as the scene itself (measured on the 2-core
development machine, default head at 512×512: MSAA 4× and 2× both about 2.5× the aliased frame
time, so 2× saves nothing), so ``"auto"`` picks ``"edge"`` there: the scene is drawn aliased into a
texture and one full-screen pass (`shaders.EDGE_AA`, five taps) blends edge pixels across their
edge, for about a third more than the aliased frame time. ``"none"`` draws aliased.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DeviceError, InputError
from ..frame import FaceFrame
from . import shaders
from .deform import Deformer, eye_rotations, head_rotation
from .mesh import AvatarMesh, Part

__all__ = ["ANTIALIAS", "DEFAULT_BACKGROUND", "EGL_PACKAGES", "Camera", "Renderer", "Timings", "material_kind", "parse_background"]

DEFAULT_BACKGROUND = "#2b3038"
ANTIALIAS = ("auto", "msaa", "edge", "none")
EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri"
FOV_Y_DEG = 20.0  # a portrait lens: about 85 mm on full frame, little perspective distortion
HEAD_FILL = 0.72  # the framed head's share of the picture's height (or width, whichever binds)

# Three-point light in world space (directions towards the light, linear RGB radiance): a warm key
# from the viewer's upper left, a cool dim fill from the right, a rim from behind on the right.
LIGHTS = (
    ((-0.62, 0.45, 0.64), (1.00, 0.93, 0.84)),
    ((0.85, 0.00, 0.52), (0.20, 0.23, 0.30)),
    ((0.50, 0.60, -0.62), (1.10, 1.02, 0.95)),
)
SKY, GROUND = (0.11, 0.125, 0.15), (0.055, 0.045, 0.04)


def parse_background(value: str | tuple[float, float, float] | None) -> tuple[float, float, float] | None:
    """``#RRGGBB`` (or ``RRGGBB``, or an sRGB 0..1 triple) → sRGB 0..1 triple; ``None``/``"transparent"`` → None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("transparent", "none")):
        return None
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise InputError(f"background: expected a colour #RRGGBB or 'transparent', got {value!r}")
        return tuple(int(text[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]
    rgb = tuple(float(c) for c in value)
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        raise InputError(f"background: expected three sRGB values in [0, 1], got {value!r}")
    return rgb  # type: ignore[return-value]


_KINDS = (
    (("lash", "brow", "hair", "beard"), shaders.KIND_GENERIC),
    (("eye", "iris", "pupil", "cornea", "sclera"), shaders.KIND_EYE),
    (("interior", "cavity", "throat", "inner", "gum", "mouth"), shaders.KIND_INTERIOR),
    (("teeth", "tooth", "tongue"), shaders.KIND_GENERIC),
    (("skin", "face", "head", "body", "neck", "lip", "ear", "nose", "lid"), shaders.KIND_SKIN),
)


def material_kind(part: Part) -> int:
    """How a part is shaded, from its name (first keyword that matches): skin, eye, interior or generic."""
    name = part.name.lower()
    for keywords, kind in _KINDS:
        if any(k in name for k in keywords):
            if kind == shaders.KIND_EYE and "lid" in name:
                return shaders.KIND_SKIN  # "eyelid_skin" is skin
            return kind
    return shaders.KIND_GENERIC


@dataclass(frozen=True)
class Camera:
    """Where the camera stands and what it sees: eye point, target and vertical field of view."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_y_deg: float = FOV_Y_DEG

    @classmethod
    def framing(cls, avatar: AvatarMesh, aspect: float, fov_y_deg: float = FOV_Y_DEG) -> Camera:
        """Fit the neutral head (vertices that follow the head at least halfway) into the picture."""
        pos = avatar.positions
        if avatar.head_weight is not None and (avatar.head_weight >= 0.5).sum() >= 4:
            pos = pos[avatar.head_weight >= 0.5]
        lo, hi = pos.min(axis=0).astype(float), pos.max(axis=0).astype(float)
        center = (lo + hi) / 2
        half_h, half_w = (hi[1] - lo[1]) / 2 / HEAD_FILL, (hi[0] - lo[0]) / 2 / HEAD_FILL
        tan = math.tan(math.radians(fov_y_deg) / 2)
        distance = max(half_h / tan, half_w / (tan * aspect)) + (hi[2] - lo[2]) / 2
        target = (center[0], center[1] - 0.04 * (hi[1] - lo[1]), center[2])  # a little chin room
        return cls((target[0], target[1], target[2] + distance), target, fov_y_deg)

    def view_proj(self, aspect: float) -> np.ndarray:
        eye, target = np.array(self.eye, float), np.array(self.target, float)
        f = target - eye
        distance = float(np.linalg.norm(f))
        f /= distance
        up = np.array([0.0, 1.0, 0.0]) if abs(f[1]) < 0.99 else np.array([0.0, 0.0, -1.0])
        s = np.cross(f, up)
        s /= np.linalg.norm(s)
        u = np.cross(s, f)
        view = np.eye(4)
        view[0, :3], view[1, :3], view[2, :3] = s, u, -f
        view[:3, 3] = -view[:3, :3] @ eye
        near, far = distance * 0.25, distance * 4.0
        t = 1.0 / math.tan(math.radians(self.fov_y_deg) / 2)
        proj = np.zeros((4, 4))
        proj[0, 0], proj[1, 1] = t / aspect, t
        proj[2, 2], proj[2, 3] = (far + near) / (near - far), 2 * far * near / (near - far)
        proj[3, 2] = -1.0
        return proj @ view


@dataclass(frozen=True)
class Timings:
    """Milliseconds the last frame spent in each step (draw is exact only with ``sync_timing``)."""

    deform_ms: float = 0.0
    draw_ms: float = 0.0
    readback_ms: float = 0.0


def _context() -> Any:
    try:
        import moderngl
    except ImportError as exc:
        raise DeviceError("the renderer needs the Python package moderngl (pip install 'moderngl>=5.10')") from exc
    try:
        ctx = moderngl.create_standalone_context(backend="egl", require=330)
    except Exception as exc:
        raise DeviceError(f"cannot open a headless OpenGL 3.3 context through EGL ({exc}); on Debian install "
                          f"the packages {EGL_PACKAGES}") from exc
    return ctx


class Renderer:
    """Renders an avatar posed by `FaceFrame`s into RGB(A) pictures of ``size`` (width, height).

    ``background`` is ``#RRGGBB``, an sRGB triple, or ``"transparent"`` (then `render` composites
    on black and `render_rgba` keeps alpha). ``antialias``: ``"msaa"`` with ``samples`` samples
    (clamped to what the driver offers), ``"edge"`` (a cheap post pass), ``"none"``, or ``"auto"``
    (edge on a software rasteriser, msaa on a GPU; see the module docstring for the costs).
    ``lighting``: ``"pixel"`` lights every fragment, ``"vertex"`` lights skin and
    the other broad surfaces per vertex (eyes stay per pixel), ``"auto"`` picks vertex on a software
    rasteriser (llvmpipe) and pixel on a GPU. Use it as a context manager, or call `close`.
    """

    def __init__(self, avatar: AvatarMesh, size: tuple[int, int] = (512, 512),
                 background: str | tuple[float, float, float] | None = DEFAULT_BACKGROUND, *, samples: int = 4,
                 camera: Camera | None = None, lighting: str = "auto", antialias: str = "auto",
                 sync_timing: bool = False) -> None:
        if lighting not in ("auto", "pixel", "vertex"):
            raise InputError(f"lighting: expected 'auto', 'pixel' or 'vertex', got {lighting!r}")
        if antialias not in ANTIALIAS:
            raise InputError(f"antialias: expected one of {', '.join(ANTIALIAS)}, got {antialias!r}")
        width, height = (int(size[0]), int(size[1]))
        if not (16 <= width <= 8192 and 16 <= height <= 8192):
            raise InputError(f"size: expected width and height in 16..8192 pixels, got {size[0]}×{size[1]}")
        if not avatar.parts or not any(len(p.indices) for p in avatar.parts):
            raise InputError(f"avatar {avatar.name!r}: expected at least one part with triangles, got none")
        self.avatar = avatar
        self.size = (width, height)
        self.background = parse_background(background)
        self.sync_timing = sync_timing
        self.timings = Timings()
        self.deformer = Deformer(avatar)
        self.camera = camera or Camera.framing(avatar, width / height)
        self._ctx = ctx = _context()
        software = any(name in ctx.info["GL_RENDERER"].lower() for name in ("llvmpipe", "softpipe", "swrast"))
        self.lighting = ("vertex" if software else "pixel") if lighting == "auto" else lighting
        self.antialias = ("edge" if software else "msaa") if antialias == "auto" else antialias
        try:
            with ctx:  # several renderers may live at once: each makes its own context current
                self._setup(ctx, samples)
        except Exception:
            ctx.release()
            raise

    # -- set-up ---------------------------------------------------------------------------------
    def _setup(self, ctx: Any, samples: int) -> None:
        import moderngl

        width, height = self.size
        msaa = self.antialias == "msaa" and samples > 1
        self.samples = max(0, min(int(samples), ctx.max_samples)) if msaa else 0
        if self.antialias == "msaa" and self.samples < 2:
            self.antialias = "none"
        depth = ctx.depth_renderbuffer((width, height), samples=self.samples)
        self._post = None
        if self.antialias == "edge":  # the scene into a texture, then one full-screen pass
            self._scene = ctx.texture((width, height), 4)
            self._scene.repeat_x = self._scene.repeat_y = False
            self._msaa = ctx.framebuffer(color_attachments=[self._scene], depth_attachment=depth)
            prog = ctx.program(**shaders.EDGE_AA)
            prog["u_image"].value = 0
            self._post = ctx.vertex_array(prog, [])
        else:
            self._msaa = ctx.framebuffer(
                color_attachments=[ctx.renderbuffer((width, height), 4, samples=self.samples)], depth_attachment=depth)
        self._resolved = ctx.framebuffer(color_attachments=[ctx.renderbuffer((width, height), 4)])
        pixel = ctx.program(**shaders.PIXEL)
        vertex = ctx.program(**shaders.VERTEX) if self.lighting == "vertex" else pixel
        self._programs = (pixel, vertex) if vertex is not pixel else (pixel,)
        avatar, d = self.avatar, self.deformer
        n = d.vertex_count
        self._vertices = d.neutral()
        self._vbo = ctx.buffer(self._vertices.tobytes(), dynamic=True)
        colors = avatar.colors if avatar.colors is not None else np.ones((n, 4), np.float32)
        self._cbo = ctx.buffer(np.ascontiguousarray(colors, np.float32).tobytes())
        rig = np.stack([d.head_weight, d.eye_id], axis=1).astype(np.float32)
        self._rbo = ctx.buffer(rig.tobytes())
        self._draws = []
        for part in avatar.parts:
            if not len(part.indices):
                continue
            ibo = ctx.buffer(np.ascontiguousarray(part.indices, np.uint32).tobytes())
            kind = material_kind(part)
            prog = pixel if kind == shaders.KIND_EYE else vertex
            vao = ctx.vertex_array(prog, [(self._vbo, "3f 3f", "in_pos", "in_nrm"), (self._cbo, "4f", "in_color"),
                                          (self._rbo, "2f", "in_rig")], index_buffer=ibo, index_element_size=4)
            self._draws.append((part, kind, prog, vao))
        # opaque parts first, then those with alpha (a cornea, eyelashes) blended over them
        self._draws.sort(key=lambda item: item[0].base_color[3] < 1.0)
        aspect = width / height
        self._set("u_view_proj", self.camera.view_proj(aspect).T)
        self._set("u_camera", np.array(self.camera.eye))
        self._set("u_pivot", d.head_pivot)
        self._set("u_eye_center", d.eye_centers)
        self._set("u_light_dir", np.array([ld for ld, _ in LIGHTS]))
        self._set("u_light_color", np.array([lc for _, lc in LIGHTS]))
        self._set("u_sky", np.array(SKY))
        self._set("u_ground", np.array(GROUND))
        self._set("u_exposure", np.array(1.0))
        self._pixels = np.empty((height, width, 4), np.uint8)
        self._last_weights: np.ndarray | None = None
        ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)  # glTF: counter-clockwise front faces
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA

    def _set(self, name: str, value: np.ndarray, programs: tuple | None = None) -> None:
        data = np.ascontiguousarray(value, np.float32).tobytes()
        for prog in programs or self._programs:
            uniform = prog.get(name, None)
            if uniform is not None:  # the GLSL compiler drops uniforms a shader does not use
                uniform.write(data)

    # -- per frame ------------------------------------------------------------------------------
    def _pose(self, frame: FaceFrame) -> None:
        weights = frame.weights
        if self._last_weights is None or not np.array_equal(weights, self._last_weights):
            lo, hi = self.deformer.morph_into(weights, self._vertices)
            if hi > lo:
                self._vbo.write(self._vertices[lo:hi].tobytes(), offset=lo * 24)
            self._last_weights = weights
        self._set("u_head_rot", head_rotation(frame.head).T)
        left, right = eye_rotations(frame.gaze)
        self._set("u_eye_rot", np.stack([left.T, right.T]))

    def _draw(self) -> None:
        import moderngl

        ctx = self._ctx
        self._msaa.use()
        bg = self.background
        self._msaa.clear(*(bg if bg is not None else (0.0, 0.0, 0.0)), 0.0 if bg is None else 1.0, depth=1.0)
        blending, culling = False, True
        for part, kind, prog, vao in self._draws:
            # a part that says it is seen from both sides (hair cards, a one-sheet lash) is not culled
            double_sided = bool(getattr(part, "double_sided", False))
            if double_sided == culling:
                (ctx.disable if double_sided else ctx.enable)(moderngl.CULL_FACE)
                culling = not double_sided
            if part.base_color[3] < 1.0 and not blending:
                ctx.enable(moderngl.BLEND)
                ctx.depth_mask = False
                blending = True
            self._set("u_base_color", np.array(part.base_color), (prog,))
            self._set("u_roughness", np.array(part.roughness), (prog,))
            self._set("u_metallic", np.array(part.metallic), (prog,))
            prog["u_kind"].value = kind
            vao.render(moderngl.TRIANGLES)
        if blending:
            ctx.disable(moderngl.BLEND)
            ctx.depth_mask = True
        if not culling:
            ctx.enable(moderngl.CULL_FACE)
        if self._post is not None:
            self._resolved.use()
            ctx.disable(moderngl.DEPTH_TEST)
            self._scene.use(location=0)
            self._post.render(moderngl.TRIANGLES, vertices=3)
            ctx.enable(moderngl.DEPTH_TEST)

    def _read(self) -> np.ndarray:
        if self._post is not None:
            self._resolved.read_into(self._pixels, components=4, alignment=1)
        elif self.samples:
            self._ctx.copy_framebuffer(self._resolved, self._msaa)
            self._resolved.read_into(self._pixels, components=4, alignment=1)
        else:
            self._msaa.read_into(self._pixels, components=4, alignment=1)
        return self._pixels[::-1]  # OpenGL's first row is the bottom one

    def render_rgba(self, frame: FaceFrame) -> np.ndarray:
        """The posed avatar as uint8 H×W×4 sRGB with alpha (0 where the background shows), top row first."""
        return self._render(frame, lambda pixels: pixels.copy())

    def render(self, frame: FaceFrame) -> np.ndarray:
        """The posed avatar as uint8 H×W×3 sRGB, top row first (a transparent background shows black)."""
        return self._render(frame, lambda pixels: np.ascontiguousarray(pixels[:, :, :3]))

    def _render(self, frame: FaceFrame, take) -> np.ndarray:
        """Pose, draw and read back one frame, timing each step; ``take`` copies out of the read buffer."""
        if not isinstance(frame, FaceFrame):
            raise InputError(f"render: expected a FaceFrame, got {type(frame).__name__}")
        with self._ctx:
            t0 = time.perf_counter()
            self._pose(frame)
            t1 = time.perf_counter()
            self._draw()
            if self.sync_timing:
                self._ctx.finish()
            t2 = time.perf_counter()
            out = take(self._read())
            t3 = time.perf_counter()
        self.timings = Timings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return out

    @property
    def info(self) -> dict[str, str]:
        """The OpenGL renderer and version strings (e.g. ``llvmpipe``) for reports."""
        return {"renderer": self._ctx.info["GL_RENDERER"], "version": self._ctx.info["GL_VERSION"]}

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.__enter__()  # release what belongs to this context, not to whichever is current
            self._ctx.release()
            self._ctx = None

    def __enter__(self) -> Renderer:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
