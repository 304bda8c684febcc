"""Show the face: avatars with ARKit morph targets, the offscreen renderer, and video output."""
