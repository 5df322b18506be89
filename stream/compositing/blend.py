"""The full-resolution blend, done only where the matte is neither 0 nor 1.

A person's matte is almost everywhere exactly 0 or 1; only a band along the silhouette is fractional.
The matte is cut into horizontal strips at its (reduced) working size; in each strip the columns split
into runs that touch the band, which get the float blend, and runs that are constant across the strip,
which are plain copies of the frame (alpha 1) or left as backdrop (alpha 0). The result equals blending
with the bilinearly upsampled matte everywhere, at a fraction of the cost.

I420 frames take another road: one 8-bit multiply-add over the three planes at once, with the matte
resized into the same planar layout. It touches half the bytes of BGR and needs no Python per region.

Light wrap (``Matte.light_wrap`` > 0) mixes the backdrop's light into the person's edge, as light from behind
spills over a real silhouette: the person's colour there becomes ``image + w·(light − image)`` with
``w = light_wrap·(1 − alpha)``, where ``light`` is the backdrop heavily blurred at the working size. It shows
nowhere alpha is 1 or 0, so on BGR frames it costs only in the band; I420 frames pay it over the frame.

Clean edges (``Matte.clean_edges``) then swap the old background's share of each soft pixel for the person's
(stream/compositing/foreground.py): a correction made at the working size, upsampled and added over the band's
bounding box only, on BGR frames and on each I420 plane alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from backdrop.pixels import BGR, I420, i420_planes
from backdrop.stream.compositing.foreground import BIAS, correction

LIGHT_SIGMA = 3.0  # working-size pixels: the backdrop blur that turns it into light (≈ 15 px at 720p)
STRIP_ROWS = 8  # working-size rows per strip
MERGE_GAP = 4  # band runs closer than this many working-size columns are blended as one region
_NEIGHBOURS = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class Matte:
    """An alpha matte (float32, 1 = person) at a working size, standing for its bilinear upsample to ``size``."""

    work: np.ndarray
    size: tuple[int, int]  # full (width, height)
    light_wrap: float = 0.0  # 0 … 1: backdrop light mixed onto the edge band (see the module docstring)
    # the band gets the person's estimated colours, not the frame's (foreground.py); None: as the background
    # prefers (Background.cleans_edges), which sets it before blending
    clean_edges: bool | None = False

    def cleaning(self, default: bool) -> Matte:
        """This matte with ``clean_edges`` decided: ``default`` where it was left to the background."""
        return self if self.clean_edges is not None else dataclasses.replace(self, clean_edges=default)

    def full(self) -> np.ndarray:
        """The matte at full resolution (float32)."""
        if self.work.shape[::-1] == self.size:
            return self.work
        return cv2.resize(self.work, self.size, interpolation=cv2.INTER_LINEAR)

    def i420(self, out: np.ndarray) -> np.ndarray:
        """Write the matte into ``out`` as 8-bit alpha laid out like an I420 frame: full size over Y, half over U, V."""
        work8 = cv2.convertScaleAbs(self.work, alpha=255.0)
        width, height = self.size
        luma, u, v = i420_planes(out)
        cv2.resize(work8, (width, height), dst=luma, interpolation=cv2.INTER_LINEAR)
        cv2.resize(work8, (width // 2, height // 2), dst=u, interpolation=cv2.INTER_LINEAR)
        v[:] = u
        return out


@dataclass(frozen=True)
class Run:
    """Full-resolution rectangle [x0, x1) × [y0, y1) and what it needs: "blend", "image" or "backdrop"."""

    x0: int
    y0: int
    x1: int
    y1: int
    kind: str


def plan(matte: Matte) -> list[Run]:
    """Cover the frame with runs; only "blend" runs contain alpha values other than 0 and 1."""
    work8 = cv2.convertScaleAbs(matte.work, alpha=255.0)
    height, width = work8.shape
    full_width, full_height = matte.size
    sx, sy = full_width / width, full_height / height
    varying = cv2.compare(cv2.dilate(work8, _NEIGHBOURS), cv2.erode(work8, _NEIGHBOURS), cv2.CMP_NE)
    band = cv2.bitwise_or(varying, cv2.inRange(work8, 1, 254))
    band = cv2.dilate(band, _NEIGHBOURS)  # a full-resolution pixel samples its neighbouring working pixels too
    strips = -(-height // STRIP_ROWS)
    padded = np.zeros((strips * STRIP_ROWS, width), np.uint8)
    padded[:height] = band
    touched = padded.reshape(strips, STRIP_ROWS, width).max(axis=1)  # per strip: columns that touch the band
    touched = cv2.morphologyEx(touched, cv2.MORPH_CLOSE, np.ones((1, MERGE_GAP), np.uint8))
    flags = np.zeros((strips, width + 2), np.int8)
    flags[:, 1:-1] = touched > 0
    strip_of, column = np.nonzero(np.diff(flags, axis=1))  # alternating starts and stops, strip by strip
    edges: list[list[int]] = [[] for _ in range(strips)]
    for strip, col in zip(strip_of.tolist(), column.tolist(), strict=True):
        edges[strip].append(col)
    full_x = [0, *(round(c * sx) for c in range(1, width)), full_width]  # working column → full-resolution x
    runs = []
    for strip, cuts in enumerate(edges):
        top = strip * STRIP_ROWS
        y0, y1 = round(top * sy), full_height if top + STRIP_ROWS >= height else round((top + STRIP_ROWS) * sy)
        previous = 0
        for start, stop in zip(cuts[::2], cuts[1::2], strict=True):
            if start > previous:
                runs.append(_constant(work8, top, previous, start, full_x, y0, y1))
            runs.append(Run(full_x[start], y0, full_x[stop], y1, "blend"))
            previous = stop
        if previous < width:
            runs.append(_constant(work8, top, previous, width, full_x, y0, y1))
    return runs


def _constant(work8: np.ndarray, top: int, start: int, stop: int, full_x: list[int], y0: int, y1: int) -> Run:
    """A run where the matte is one constant, 0 or 1, throughout."""
    return Run(full_x[start], y0, full_x[stop], y1, "image" if work8[top, start] >= 128 else "backdrop")


def light(backdrop: np.ndarray, matte: Matte) -> np.ndarray:
    """The backdrop's light at the working size: downsampled (reading only the sampled pixels) and blurred."""
    small = cv2.resize(backdrop, matte.work.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(small, (0, 0), LIGHT_SIGMA)


def _upsample(small: np.ndarray, run: Run, size: tuple[int, int]) -> np.ndarray:
    """The part of ``small`` under ``run``, bilinearly upsampled as a full-frame resize to ``size`` would give it."""
    sx, sy = small.shape[1] / size[0], small.shape[0] / size[1]
    warp = np.array([[sx, 0, (run.x0 + 0.5) * sx - 0.5], [0, sy, (run.y0 + 0.5) * sy - 0.5]], dtype=np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(small, warp, (run.x1 - run.x0, run.y1 - run.y0), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def band_box(matte: Matte) -> Run | None:
    """The full-size rectangle around every soft pixel of the matte (and the working pixel around it), or None."""
    soft = cv2.inRange(matte.work, 1e-6, 1.0 - 1e-6)
    points = cv2.findNonZero(soft)
    if points is None:
        return None
    x, y, width, height = cv2.boundingRect(points)
    sx, sy = matte.size[0] / matte.work.shape[1], matte.size[1] / matte.work.shape[0]
    x0, y0 = max(0, int((x - 1) * sx)), max(0, int((y - 1) * sy))
    x1, y1 = (
        min(matte.size[0], int(np.ceil((x + width + 1) * sx))),
        min(matte.size[1], int(np.ceil((y + height + 1) * sy))),
    )
    return Run(x0, y0, x1, y1, "blend")


def correct(out: np.ndarray, fix: np.ndarray, run: Run, channel: int | None = None) -> None:
    """Add the working-size correction ``fix`` (foreground.correction), upsampled, to ``out`` over ``run``, in
    place; for one I420 plane, ``channel`` picks its part of the correction."""
    delta = _upsample(fix if channel is None else fix[..., channel], run, (out.shape[1], out.shape[0]))
    region = out[run.y0 : run.y1, run.x0 : run.x1]
    cv2.addWeighted(region, 1.0, delta, 1.0, -BIAS, dst=region)  # saturates once, at the end


def _blend_run(
    image: np.ndarray, backdrop: np.ndarray, alpha: np.ndarray, wrap: tuple[np.ndarray, float] | None, run: Run
) -> np.ndarray:
    """The blended pixels of one run; with ``wrap`` (light, strength) the backdrop's light tints the edge first."""
    rows, columns = slice(run.y0, run.y1), slice(run.x0, run.x1)
    weights = alpha[rows, columns]
    # OpenCV takes a Python number as a Scalar operand; its stubs list only arrays for src1.
    inverse = cv2.subtract(1.0, weights)  # type: ignore[call-overload]
    person = image[rows, columns]
    if wrap is not None:
        small, strength = wrap
        spill = cv2.multiply(inverse, strength)
        person = cv2.blendLinear(_upsample(small, run, (image.shape[1], image.shape[0])), person, spill, 1.0 - spill)
    return cv2.blendLinear(person, backdrop[rows, columns], weights, inverse)


def blend(image: np.ndarray, backdrop: np.ndarray, matte: Matte, *, backdrop_is_scratch: bool = False) -> np.ndarray:
    """``image * alpha + backdrop * (1 - alpha)`` with alpha = ``matte.full()`` (plus the light wrap, if asked).

    ``backdrop_is_scratch`` lets the blend write into ``backdrop`` instead of a copy of it (every run only
    reads the backdrop pixels it then overwrites, so this is safe).
    """
    wrap = (light(backdrop, matte), matte.light_wrap) if matte.light_wrap > 0 else None
    if matte.work.shape[::-1] == matte.size:  # no upsampling to exploit: one blend of the whole frame
        out = _blend_run(image, backdrop, matte.work, wrap, Run(0, 0, *matte.size, "blend"))
    else:
        out = backdrop if backdrop_is_scratch else backdrop.copy()
        alpha: np.ndarray | None = None
        for run in plan(matte):
            rows, columns = slice(run.y0, run.y1), slice(run.x0, run.x1)
            if run.kind == "image":
                out[rows, columns] = image[rows, columns]
            elif run.kind == "blend":
                if alpha is None:
                    alpha = matte.full()
                out[rows, columns] = _blend_run(image, backdrop, alpha, wrap, run)
    if matte.clean_edges:
        _clean_band(out, image, matte)
    return out


def _clean_band(out: np.ndarray, image: np.ndarray, matte: Matte, *, colours: bool = False) -> None:
    """Add the clean-edges correction of the BGR ``image`` to ``out`` over the band, in place (none: nothing)."""
    if (box := band_box(matte)) is not None:
        correct(out, correction(image, BGR, matte.work, colours=colours), box)


def cleaned(image: np.ndarray, matte: Matte) -> np.ndarray:
    """A BGR ``image`` with the person's estimated colours in the band (a copy; ``image`` when not asked for)."""
    if not matte.clean_edges:
        return image
    out = image.copy()
    _clean_band(out, image, matte, colours=True)
    return out


class I420Blender:
    """``blend`` for I420 frames: ``(image·a + backdrop·(255 − a)) / 255`` per byte, a = the 8-bit matte.

    Its full-size scratch buffers live as long as it does (one blender per composite thread): fresh ones
    every frame would cost more in page faults than the arithmetic itself.
    """

    def __init__(self, width: int, height: int) -> None:
        shape = (height * 3 // 2, width)
        self.alpha, self.inverse, self.product = (np.empty(shape, np.uint8) for _ in range(3))
        self.light, self.person = np.empty(shape, np.uint8), np.empty(shape, np.uint8)

    def blend(
        self, image: np.ndarray, backdrop: np.ndarray, matte: Matte, *, backdrop_is_scratch: bool = False
    ) -> np.ndarray:
        alpha = matte.i420(self.alpha)
        person = self.wrap(image, backdrop, matte, alpha) if matte.light_wrap > 0 else image
        out = backdrop if backdrop_is_scratch else np.empty_like(backdrop)
        cv2.multiply(backdrop, cv2.bitwise_not(alpha, dst=self.inverse), dst=out, scale=1.0 / 255.0)
        cv2.add(out, cv2.multiply(person, alpha, dst=self.product, scale=1.0 / 255.0), dst=out)
        if matte.clean_edges:
            self.clean(out, image, matte)
        return out

    def clean(self, out: np.ndarray, image: np.ndarray, matte: Matte) -> None:
        """Swap the old background's share in the band of the blended ``out`` for the person's, plane by plane,
        over the band's bounding box (the correction is BIAS, no change, everywhere else)."""
        box = band_box(matte)
        if box is None:
            return
        fix = correction(image, I420, matte.work)
        for channel, plane in enumerate(i420_planes(out)):
            shrink = 1 if channel == 0 else 2  # chroma planes are half size
            part = Run(box.x0 // shrink, box.y0 // shrink, -(-box.x1 // shrink), -(-box.y1 // shrink), box.kind)
            correct(plane, fix, part, channel)

    def wrap(self, image: np.ndarray, backdrop: np.ndarray, matte: Matte, alpha: np.ndarray) -> np.ndarray:
        """``image`` with the backdrop's light mixed in by ``light_wrap·(255 − alpha)``, over the whole frame."""
        work_width, work_height = matte.work.shape[::-1]
        for plane, target in zip(i420_planes(backdrop), i420_planes(self.light), strict=True):
            scale = plane.shape[1] / matte.size[0]  # chroma planes are half size: half the samples, half the blur
            small = cv2.resize(plane, (max(1, round(work_width * scale)), max(1, round(work_height * scale))))
            small = cv2.GaussianBlur(small, (0, 0), LIGHT_SIGMA * scale)
            cv2.resize(small, target.shape[::-1], dst=target, interpolation=cv2.INTER_LINEAR)
        spill = cv2.convertScaleAbs(cv2.bitwise_not(alpha, dst=self.inverse), alpha=matte.light_wrap)
        keep = cv2.bitwise_not(spill)
        cv2.multiply(image, keep, dst=self.person, scale=1.0 / 255.0)
        tint = cv2.multiply(self.light, spill, dst=self.product, scale=1.0 / 255.0)
        return cv2.add(self.person, tint, dst=self.person)
