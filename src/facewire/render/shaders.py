"""GLSL for the offscreen renderer: rigid head and eye rotation in the vertex shader, and a small
lighting model (three-point light, wrapped skin diffuse, Blinn-Phong, sharp eye highlights).

Two programs share one lighting function. ``PIXEL`` lights every fragment; ``VERTEX`` lights every
vertex and interpolates the result (Gouraud), which on a CPU rasteriser (llvmpipe shades each MSAA
sample) is several times faster and, on a head tessellated this finely, looks the same for the
broad skin lobes. The renderer lights eyes per pixel always, since their highlight is sharp.

Material kinds (``u_kind``): 0 generic, 1 skin (per-channel wrapped diffuse: red light reaches
furthest round the terminator, a cheap stand-in for subsurface scattering), 2 eye (sharp cornea
highlight), 3 mouth interior (little light reaches it). Light is linear, then an ACES-fit tone
curve, then the sRGB transfer function: the framebuffer holds display-ready 8-bit sRGB.
"""

from __future__ import annotations

__all__ = ["EDGE_AA", "KIND_EYE", "KIND_GENERIC", "KIND_INTERIOR", "KIND_SKIN", "PIXEL", "VERTEX"]

KIND_GENERIC, KIND_SKIN, KIND_EYE, KIND_INTERIOR = 0, 1, 2, 3

_RIG = """
uniform mat4 u_view_proj;
uniform mat3 u_head_rot;
uniform vec3 u_pivot;
uniform mat3 u_eye_rot[2];
uniform vec3 u_eye_center[2];

in vec3 in_pos;
in vec3 in_nrm;
in vec4 in_color;
in vec2 in_rig;  // x: head weight 0..1, y: 0 none, 1 left eye, 2 right eye

void rig(out vec3 p, out vec3 n) {
    p = in_pos;
    n = in_nrm;
    int eye = int(in_rig.y + 0.5);
    if (eye > 0) {
        mat3 r = u_eye_rot[eye - 1];
        vec3 c = u_eye_center[eye - 1];
        p = r * (p - c) + c;
        n = r * n;
    }
    p = mix(p, u_head_rot * (p - u_pivot) + u_pivot, in_rig.x);
    n = mix(n, u_head_rot * n, in_rig.x);
}
"""

_SHADE = """
uniform vec3 u_camera;
uniform vec4 u_base_color;   // linear RGBA
uniform float u_roughness;
uniform float u_metallic;
uniform int u_kind;
uniform vec3 u_light_dir[3];  // towards each light: key, fill, rim
uniform vec3 u_light_color[3];
uniform vec3 u_sky;
uniform vec3 u_ground;
uniform float u_exposure;

const float PI = 3.14159265;

vec3 aces(vec3 x) {
    return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
}

vec3 to_srgb(vec3 c) {
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
}

// sRGB colour of a surface point: position, unit normal, linear base colour
vec3 shade(vec3 p, vec3 n, vec4 base) {
    vec3 v = normalize(u_camera - p);
    vec3 albedo = base.rgb * (1.0 - u_metallic);
    vec3 f0 = mix(vec3(u_kind == 1 ? 0.028 : 0.04), base.rgb, u_metallic);
    float r = clamp(u_roughness, 0.03, 1.0);
    float shininess = 2.0 / (r * r * r * r) - 2.0;
    float spec_gain = 1.0;
    if (u_kind == 2) { shininess = max(shininess, 1200.0); spec_gain = 3.0; }
    float ndv = max(dot(n, v), 0.0);
    float grazing = 1.0 - ndv;
    vec3 fresnel = f0 + (1.0 - f0) * (grazing * grazing * grazing * grazing * grazing);
    vec3 wrap = u_kind == 1 ? vec3(0.55, 0.30, 0.20) : vec3(0.0);
    vec3 light = vec3(0.0);
    for (int i = 0; i < 3; ++i) {
        vec3 l = normalize(u_light_dir[i]);
        float ndl = dot(n, l);
        vec3 diffuse = max((vec3(ndl) + wrap) / (1.0 + wrap), 0.0);
        float ndh = max(dot(n, normalize(l + v)), 0.0);
        float spec = (shininess + 8.0) / (8.0 * PI) * pow(ndh, shininess) * max(ndl, 0.0);
        light += u_light_color[i] * (albedo * diffuse + spec * spec_gain * fresnel);
    }
    vec3 color = light + mix(u_ground, u_sky, n.y * 0.5 + 0.5) * albedo;
    if (u_kind == 3) {
        color *= 0.3;
    } else {
        // rim: the back light grazing the silhouette, strongest where the surface turns away
        float edge = grazing * grazing * grazing;
        vec3 rim = u_light_color[2] * edge * max(dot(n, normalize(u_light_dir[2])) + 0.6, 0.0) * 0.3;
        color += u_kind == 1 ? rim * vec3(1.0, 0.72, 0.55) : rim;
    }
    return to_srgb(aces(color * u_exposure));
}
"""

PIXEL = {
    "vertex_shader": "#version 330\n" + _RIG + """
out vec3 v_pos;
out vec3 v_nrm;
out vec4 v_color;

void main() {
    vec3 p, n;
    rig(p, n);
    v_pos = p;
    v_nrm = n;
    v_color = in_color;
    gl_Position = u_view_proj * vec4(p, 1.0);
}
""",
    "fragment_shader": "#version 330\n" + _SHADE + """
in vec3 v_pos;
in vec3 v_nrm;
in vec4 v_color;
out vec4 f_color;

void main() {
    vec3 n = normalize(v_nrm);
    if (!gl_FrontFacing) n = -n;
    vec4 base = u_base_color * v_color;
    f_color = vec4(shade(v_pos, n, base), base.a);
}
""",
}

VERTEX = {
    "vertex_shader": "#version 330\n" + _RIG + _SHADE + """
out vec4 v_rgba;

void main() {
    vec3 p, n;
    rig(p, n);
    vec4 base = u_base_color * in_color;
    v_rgba = vec4(shade(p, normalize(n), base), base.a);
    gl_Position = u_view_proj * vec4(p, 1.0);
}
""",
    "fragment_shader": """#version 330
in vec4 v_rgba;
out vec4 f_color;

void main() {
    f_color = v_rgba;
}
""",
}

# Post-process edge smoothing for software rasterisers, where multisampling costs about as much as
# the whole scene: one full-screen triangle reads the aliased picture with five unfiltered taps,
# finds where a pixel sits on a luma edge and blends it towards its neighbours across the edge by
# FXAA's sub-pixel estimate (its end-of-edge search is left out: on llvmpipe it doubles the cost).
EDGE_AA = {
    "vertex_shader": """#version 330
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
""",
    "fragment_shader": """#version 330
uniform sampler2D u_image;
out vec4 f_color;

const vec3 LUMA = vec3(0.299, 0.587, 0.114);

void main() {
    ivec2 ip = ivec2(gl_FragCoord.xy);
    ivec2 top = textureSize(u_image, 0) - 1;  // fetches past the border are undefined: clamp them
    vec4 m = texelFetch(u_image, ip, 0);
    vec4 n = texelFetch(u_image, ivec2(ip.x, min(ip.y + 1, top.y)), 0);
    vec4 s = texelFetch(u_image, ivec2(ip.x, max(ip.y - 1, 0)), 0);
    vec4 e = texelFetch(u_image, ivec2(min(ip.x + 1, top.x), ip.y), 0);
    vec4 w = texelFetch(u_image, ivec2(max(ip.x - 1, 0), ip.y), 0);
    float lm = dot(m.rgb, LUMA), ln = dot(n.rgb, LUMA), ls = dot(s.rgb, LUMA);
    float le = dot(e.rgb, LUMA), lw = dot(w.rgb, LUMA);
    float range = max(lm, max(max(ln, ls), max(le, lw))) - min(lm, min(min(ln, ls), min(le, lw)));
    // how far the pixel is off its neighbourhood's mean, relative to the local contrast
    float sub = clamp(abs(0.25 * (ln + ls + le + lw) - lm) / max(range, 1e-4), 0.0, 1.0);
    sub = sub * sub * (3.0 - 2.0 * sub);
    float k = 0.75 * sub * step(0.05, range);
    bool horizontal = abs(ln + ls - 2.0 * lm) >= abs(le + lw - 2.0 * lm);
    vec4 across = horizontal ? 0.5 * (n + s) : 0.5 * (e + w);
    f_color = mix(m, across, k);
}
""",
}
