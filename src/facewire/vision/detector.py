"""Face detection with MediaPipe's short-range BlazeFace: SSD anchors, box decoding, weighted NMS.

Runs only when the tracker has lost a face; 128×128 letterboxed input in [-1, 1]. Each detection
carries six keypoints (subject's right eye, left eye, nose tip, mouth, right ear, left ear) from
which the rotated landmark region is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .roi import Roi, rotation_from
from .runtime import TfliteModel

__all__ = ["Detection", "FaceDetector", "ssd_anchors"]

_INPUT = 128
_SCORE_CLIP = 100.0


@dataclass(frozen=True, slots=True)
class Detection:
    """A face box in image pixels (x0, y0, x1, y1), its six keypoints (6×2 px) and score."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float

    def roi(self, scale: float = 1.5) -> Roi:
        """The square, eye-aligned region the landmark model should see (MediaPipe's 1.5× rule)."""
        rot = rotation_from(self.keypoints[0], self.keypoints[1])
        x0, y0, x1, y1 = self.box
        return Roi(cx=(x0 + x1) / 2, cy=(y0 + y1) / 2, size=max(x1 - x0, y1 - y0) * scale, rotation=rot)


def ssd_anchors() -> np.ndarray:
    """The 896 anchor centres (x, y in [0, 1]) of the short-range model.

    SsdAnchorsCalculator with strides (8, 16, 16, 16), one aspect ratio plus the interpolated scale:
    2 anchors per cell on the 16×16 grid and 6 per cell on the 8×8 grid, fixed anchor size.
    """
    anchors: list[tuple[float, float]] = []
    strides = (8, 16, 16, 16)
    i = 0
    while i < len(strides):
        stride = strides[i]
        repeats = 0
        while i < len(strides) and strides[i] == stride:
            repeats += 2
            i += 1
        cells = _INPUT // stride
        for y in range(cells):
            for x in range(cells):
                anchors.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * repeats)
    return np.array(anchors, dtype=np.float32)


class FaceDetector:
    """Finds faces in a whole RGB image."""

    def __init__(self, model_path: str | Path, min_score: float = 0.5, iou_threshold: float = 0.3) -> None:
        self.model = TfliteModel(model_path)
        self.anchors = ssd_anchors()
        self.min_score = min_score
        self.iou_threshold = iou_threshold

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in the whole image; if none, faces in overlapping tiles (for small, distant faces).

        The short-range model sees the image at 128 px, so a face under about a fifth of the image
        is too small for it; tiles of 60 % of the image in a 2×2 grid give such faces 1.7× more pixels.
        """
        found = self._detect(rgb)
        h, w = rgb.shape[:2]
        if found or max(h, w) < 2 * _INPUT:
            return found
        th, tw = int(h * 0.6), int(w * 0.6)
        for y0 in (0, h - th):
            for x0 in (0, w - tw):
                for det in self._detect(rgb[y0:y0 + th, x0:x0 + tw]):
                    x_a, y_a, x_b, y_b = det.box
                    moved = Detection(box=(x_a + x0, y_a + y0, x_b + x0, y_b + y0),
                                      keypoints=det.keypoints + np.array([x0, y0], np.float32), score=det.score)
                    if all(_iou(np.array(moved.box), np.array([f.box]))[0] < 0.3 for f in found):
                        found.append(moved)
        return sorted(found, key=lambda d: -d.score)

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        scale = _INPUT / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        pad_x, pad_y = (_INPUT - nw) // 2, (_INPUT - nh) // 2
        canvas = np.zeros((_INPUT, _INPUT, 3), dtype=np.float32)
        canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = small.astype(np.float32) * (2.0 / 255.0) - 1.0
        raw, logits = self.model(canvas[None])
        raw, logits = raw[0], logits[0, :, 0]
        # threshold on logits first: sigmoid is monotonic, and most of the 896 anchors are empty
        keep = np.nonzero(logits >= np.log(self.min_score / (1.0 - self.min_score)))[0]
        if keep.size == 0:
            return []
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -_SCORE_CLIP, _SCORE_CLIP)))
        raw, anchors = raw[keep], self.anchors[keep]
        # decode to the 128-px letterboxed frame, in [0, 1]
        cx = raw[:, 0] / _INPUT + anchors[:, 0]
        cy = raw[:, 1] / _INPUT + anchors[:, 1]
        bw = raw[:, 2] / _INPUT
        bh = raw[:, 3] / _INPUT
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = raw[:, 4:16].reshape(-1, 6, 2) / _INPUT + anchors[:, None, :]
        dets = []
        for box, kp, score in _weighted_nms(boxes, kps, scores, self.iou_threshold):
            # undo the letterbox: [0,1] of the 128 canvas → image pixels
            box_px = ((box[[0, 2]] * _INPUT - pad_x) / scale, (box[[1, 3]] * _INPUT - pad_y) / scale)
            kp_px = np.stack([(kp[:, 0] * _INPUT - pad_x) / scale, (kp[:, 1] * _INPUT - pad_y) / scale], axis=1)
            dets.append(Detection(
                box=(float(box_px[0][0]), float(box_px[1][0]), float(box_px[0][1]), float(box_px[1][1])),
                keypoints=kp_px.astype(np.float32),
                score=float(score),
            ))
        return dets


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix0, iy0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    ix1, iy1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, threshold: float):
    """MediaPipe's WEIGHTED non-max suppression: each cluster becomes its score-weighted mean."""
    order = np.argsort(-scores)
    remaining = order
    while remaining.size:
        top = remaining[0]
        overlap = _iou(boxes[top], boxes[remaining])
        cluster = remaining[overlap > threshold]
        remaining = remaining[overlap <= threshold]
        wts = scores[cluster][:, None]
        total = wts.sum()
        box = (boxes[cluster] * wts).sum(0) / total
        kp = (kps[cluster] * wts[:, :, None]).sum(0) / total
        yield box, kp, scores[top]
