"""Pixel layouts a frame can be in, and the one place that converts between them.

BGR (H×W×3) is what OpenCV, cameras and network streams give; BGRA adds the alpha of transparent output;
RGB is what training data and models use. I420 (planar YUV 4:2:0 in one (H·3/2)×W array: the Y plane,
then U, then V at half size) is what H.264 files decode to and encode from. A file → file run that stays
in I420 skips a full-frame colour conversion at each end and blends half as many bytes; the pipeline picks
it only when the source, the background and every sink can work in it. Every branch on the layout lives
here; the rest of Backdrop asks these functions.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

BGR = "bgr"
BGRA = "bgra"
RGB = "rgb"
I420 = "i420"

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts"})


def i420_size(image: np.ndarray) -> tuple[int, int]:
    """(width, height) of the picture an I420 array holds."""
    return image.shape[1], image.shape[0] * 2 // 3


def frame_size(image: np.ndarray, layout: str) -> tuple[int, int]:
    """(width, height) of the picture a frame in ``layout`` holds."""
    return i420_size(image) if layout == I420 else (image.shape[1], image.shape[0])


def i420_planes(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H×W), U and V (H/2×W/2) planes of an I420 array."""
    width, height = i420_size(image)
    chroma = image[height:].reshape(height, width // 2)
    return image[:height], chroma[: height // 2], chroma[height // 2 :]


def bgr_to_i420(image: np.ndarray) -> np.ndarray:
    """BT.601 limited range, as libx264 is fed and as PyAV decodes without other colour metadata."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


def i420_to_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420)


def i420_to_nv12(image: np.ndarray) -> np.ndarray:
    """The same picture as NV12 (the Y plane, then U and V interleaved): a virtual camera's native format."""
    width, height = i420_size(image)
    y, u, v = i420_planes(image)
    out = np.empty_like(image)
    out[:height] = y
    chroma = out[height:].reshape(height // 2, width // 2, 2)
    chroma[..., 0], chroma[..., 1] = u, v
    return out


def i420_to_yuyv(image: np.ndarray) -> np.ndarray:
    """The same picture as packed YUYV 4:2:2 (H×W·2 bytes: Y0 U Y1 V), each chroma row used for two lines."""
    return _pack_422(image, (0, 1, 2, 3))


def i420_to_uyvy(image: np.ndarray) -> np.ndarray:
    """The same picture as packed UYVY 4:2:2 (H×W·2 bytes: U Y0 V Y1)."""
    return _pack_422(image, (1, 0, 3, 2))


def _pack_422(image: np.ndarray, order: tuple[int, int, int, int]) -> np.ndarray:
    """Y0, U, Y1, V of every pixel pair, at the byte positions ``order`` gives."""
    width, height = i420_size(image)
    y, u, v = i420_planes(image)
    out = np.empty((height, width // 2, 4), np.uint8)
    out[..., order[0]] = y[:, 0::2]
    out[..., order[1]] = np.repeat(u, 2, axis=0)
    out[..., order[2]] = y[:, 1::2]
    out[..., order[3]] = np.repeat(v, 2, axis=0)
    return out.reshape(height, width * 2)


def resize_i420(image: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The I420 picture resized to ``size`` (width, height, both even), plane by plane."""
    width, height = size
    out = np.empty((height * 3 // 2, width), np.uint8)
    for source, target, scale in zip(i420_planes(image), i420_planes(out), (1, 2, 2), strict=True):
        cv2.resize(source, (width // scale, height // scale), dst=target, interpolation=interpolation)
    return out


def planes(image: np.ndarray, layout: str) -> tuple[np.ndarray, ...]:
    """The arrays to process one by one: the image itself, or the three I420 planes."""
    return i420_planes(image) if layout == I420 else (image,)


def to_bgr(image: np.ndarray, layout: str) -> np.ndarray:
    """The picture as BGR (alpha dropped): what sinks that only show or send colour need."""
    if layout == I420:
        return i420_to_bgr(image)
    if layout == BGRA:
        return np.ascontiguousarray(image[..., :3])
    if layout == RGB:
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return image


RESAMPLINGS = ("mediapipe", "resize")
BLACK_LUMA = 16.0  # MediaPipe's zero border is RGB black: Y = 16 in limited-range YUV
# BT.601 limited-range YUV → RGB as FFmpeg's swscale converts it, i.e. what PyAV and cv2.VideoCapture hand over
# as BGR (rows R, G, B; columns Y, U, V, offset): fitted to PyAV's output over a grid of YUV values, residual
# 0.27 levels. It runs about one level darker than cv2.COLOR_YUV2RGB_I420, and the model notices that at its
# uncertain pixels: an I420 frame should give the same tensor as its FFmpeg-decoded BGR twin.
YUV_TO_RGB = np.array(
    [[1.1642, 0.0, 1.5955, -223.797], [1.1641, -0.3914, -0.815, 134.371], [1.1643, 2.0174, 0.0, -277.813]], np.float32
)


def small_rgb(image: np.ndarray, layout: str, size: tuple[int, int], resampling: str = "mediapipe") -> np.ndarray:
    """The picture shrunk to ``size`` (width, height) as RGB uint8: the first half of every model input.

    ``mediapipe`` samples it as MediaPipe's ImageToTensorCalculator does (what the selfie models were trained
    on); ``resize`` is cv2.resize. Both convert colour on the small picture only.
    """
    if resampling == "mediapipe":
        return warp_rgb(image, layout, size)
    if resampling != "resize":
        raise ValueError(f"unknown resampling {resampling!r}: use one of {', '.join(RESAMPLINGS)}")
    if layout == I420:
        width, height = size
        even = (width + width % 2, height + height % 2)  # I420 needs an even size
        rgb = cv2.cvtColor(resize_i420(image, even), cv2.COLOR_YUV2RGB_I420)
        return rgb if even == size else cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    return _to_rgb(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), layout)


def warp_rgb(image: np.ndarray, layout: str, size: tuple[int, int]) -> np.ndarray:
    """The whole picture sampled onto ``size`` (width, height) as MediaPipe's ImageToTensor does it, RGB uint8.

    MediaPipe maps the image's corners onto the tensor's corners (output pixel u reads source x = u·W/w, no
    half-pixel centring, unlike cv2.resize) and samples bilinearly with a zero border, in the fixed point of
    the OpenCV 4 it links (see ``_sample_map``): BGR gives MediaPipe's own tensor, bit for bit. I420 is
    sampled plane by plane, each sample reading what the same sample of the decoded BGR picture would (see
    ``_replicated``), then converted at the small size, so no full-size colour conversion runs.
    """
    width, height = frame_size(image, layout)
    scale = (width / size[0], height / size[1])
    if layout != I420:
        maps = _sample_map(size, scale, chroma=False, fixed=True)
        return _to_rgb(_warp(image, maps, cv2.BORDER_CONSTANT, 0.0), layout)
    y, u, v = i420_planes(image)
    chroma = _sample_map(size, scale, chroma=True, fixed=False)
    planes = [_warp(y, _sample_map(size, scale, chroma=False, fixed=False), cv2.BORDER_CONSTANT, BLACK_LUMA)]
    planes += [_warp(p, chroma, cv2.BORDER_REPLICATE, 0.0) for p in (u, v)]
    return cv2.transform(cv2.merge(planes), YUV_TO_RGB)


def _warp(plane: np.ndarray, maps: tuple[np.ndarray, np.ndarray], border: int, fill: float) -> np.ndarray:
    return cv2.remap(plane, *maps, cv2.INTER_LINEAR, borderMode=border, borderValue=fill)


@functools.lru_cache(maxsize=16)
def _sample_map(
    size: tuple[int, int], scale: tuple[float, float], *, chroma: bool, fixed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap's maps: output pixel (u, v) reads source (u·sx, v·sy) rounded to 1/32; built once per size.

    OpenCV 4's warpAffine/warpPerspective (MediaPipe's call) round every position to 1/32 pixel and blend
    with integer weights. ``fixed`` (CV_16SC2) maps do exactly that on any OpenCV and are the fastest for
    colour images; float maps at the same positions are twice as fast for one plane under OpenCV 5, which
    interpolates them in float (a level apart at some samples: I420 is not bit-exact anyway, see above).
    """
    xs = np.round(np.arange(size[0]) * scale[0] * 32) / 32
    ys = np.round(np.arange(size[1]) * scale[1] * 32) / 32
    if chroma:
        xs, ys = _replicated(xs), _replicated(ys)
    map_x, map_y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    return cv2.convertMaps(map_x, map_y, cv2.CV_16SC2) if fixed else (map_x, map_y)


def _replicated(luma: np.ndarray) -> np.ndarray:
    """Chroma-plane positions that sample as bilinear sampling at ``luma`` positions of a picture whose chroma
    was replicated onto 2×2 luma blocks (what FFmpeg's and OpenCV's I420 → BGR conversions do).

    Between luma pixels 2j and 2j + 1 both neighbours hold chroma j: the sample is chroma j itself. Between
    2j + 1 and 2j + 2 it blends chroma j and j + 1 by the same fraction.
    """
    whole = np.floor(luma)
    fraction = luma - whole
    return whole // 2 + np.where(whole % 2 == 1, fraction, 0.0)


def _to_rgb(image: np.ndarray, layout: str) -> np.ndarray:
    if layout == RGB:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if layout == BGRA else cv2.COLOR_BGR2RGB)


def luma(image: np.ndarray, layout: str, size: tuple[int, int]) -> np.ndarray:
    """The picture's brightness at ``size`` (width, height), uint8: the Y plane of I420, else grey."""
    if layout == I420:
        return cv2.resize(i420_planes(image)[0], size, interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    codes = {BGR: cv2.COLOR_BGR2GRAY, BGRA: cv2.COLOR_BGRA2GRAY, RGB: cv2.COLOR_RGB2GRAY}
    return cv2.cvtColor(small, codes[layout])


def convert(image: np.ndarray, layout: str, target: str) -> np.ndarray:
    """``image`` from ``layout`` into ``target`` (BGR or I420): what a source gives → what the run works in."""
    if layout == target:
        return image
    if target == I420:
        return bgr_to_i420(to_bgr(image, layout))
    if target == BGR:
        return to_bgr(image, layout)
    raise ValueError(f"cannot convert {layout} frames to {target}")
