"""PSNR and SSIM on the Y channel, the evaluation protocol every table of the field uses (docs/protocol.md).

Conventions (docs/CONTRIBUTING.md): images are ``uint8`` ``H x W x 3`` RGB arrays;
tensors are float [0, 1] ``NCHW``; metrics are computed in float64.

* :class:`Protocol` is a frozen dataclass recorded (``dataclasses.asdict``) next to every number.
* Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 (ITU-R BT.601 as MATLAB's ``rgb2ycbcr``), kept float
  (``round_y=True`` rounds it like MATLAB's uint8 ``rgb2ycbcr`` and IMDN's python script; that lowers
  PSNR by ~0.03-0.09 dB).
* ``crop_border`` pixels are removed from every side, default = the scale (not EDSR's scale + 6).
* ``gray_as_y`` (default off): images stored with one channel (Set14 ``bridge``) are scored on their
  gray level ``(Y - 16) * 255 / 219`` (= the gray value for equal channels) instead of on BT.601 Y. The
  classic MATLAB scripts behind the published bicubic table skip ``rgb2ycbcr`` for such images, which
  scores ``bridge`` 1.32 dB lower and Set14 0.09 dB lower than the Python pipelines (BasicSR, IMDN's
  script) that read every image as RGB (docs/protocol.md, the default here).
* PSNR = 10 log10(255^2 / MSE) per image (``inf`` for identical images).
* SSIM (Wang et al. 2004; scikit-image's implementation): 11 x 11 Gaussian window sigma 1.5 (normalised),
  K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering (only windows fully inside the image), mean of the
  SSIM map; on RGB
  (``y_only=False``) the mean over the three channels.
* :func:`tensor_to_uint8`: clamp to [0, 1], times 255, round half up, ``uint8`` ``HWC`` (MATLAB's
  ``im2uint8`` rounding; ``torch.round`` would round half to even).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Protocol:
    """How SR output is scored; ``asdict(protocol)`` is stored with every result.

    Attributes:
        crop_border: pixels removed from each side before scoring; None means "= scale".
        y_only: score the BT.601 luma (True) or the three RGB channels (False).
        round_y: round Y to integers (MATLAB uint8 ``rgb2ycbcr``, IMDN's script); default off.
        ssim_window: side of the Gaussian SSIM window.
        ssim_sigma: its standard deviation.
        ssim_k1: SSIM constant K1.
        ssim_k2: SSIM constant K2.
        data_range: L, the dynamic range of the pixel values.
        gray_as_y: score single-channel source images on their gray level (MATLAB table convention).
        lr_kernel: how LR inputs are made (informative; :mod:`ibmdn.data.imresize`).
        lpips_net: LPIPS backbone when LPIPS is computed (RGB, whole image, no border crop).
    """

    crop_border: int | None = None
    y_only: bool = True
    round_y: bool = False
    ssim_window: int = 11
    ssim_sigma: float = 1.5
    ssim_k1: float = 0.01
    ssim_k2: float = 0.03
    data_range: float = 255.0
    gray_as_y: bool = False
    lr_kernel: str = "matlab_bicubic_aa"
    lpips_net: str = "alex-v0.1"

    def border(self, scale: int) -> int:
        """Pixels cropped from each side at ``scale``."""
        return int(scale if self.crop_border is None else self.crop_border)


DEFAULT_PROTOCOL = Protocol()


def rgb_to_y(img: np.ndarray, round_y: bool = False) -> np.ndarray:
    """BT.601 luma in [16, 235] of a ``uint8`` RGB ``H x W x 3`` image, float64 ``H x W``."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb_to_y expects H x W x 3, got {img.shape}")
    x = img.astype(np.float64)
    y = 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
    return np.floor(y + 0.5) if round_y else y


def _prepare(sr: np.ndarray, hr: np.ndarray, scale: int, protocol: Protocol, gray: bool) -> list[np.ndarray]:
    """Cropped float64 planes to compare: [(sr_y, hr_y)] or three RGB channel pairs."""
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"SR {sr.shape} and HR {hr.shape} differ in shape")
    if sr.dtype != np.uint8 or hr.dtype != np.uint8:
        raise TypeError(f"metrics take uint8 images (got {sr.dtype}, {hr.dtype}); see tensor_to_uint8")
    b = protocol.border(scale)
    if b:
        if sr.shape[0] <= 2 * b or sr.shape[1] <= 2 * b:
            raise ValueError(f"image {sr.shape[:2]} too small for a {b}-pixel border crop")
        sr, hr = sr[b:-b, b:-b], hr[b:-b, b:-b]
    if protocol.y_only and gray and protocol.gray_as_y:
        def level(img):
            g = (rgb_to_y(img) - 16.0) * (255.0 / 219.0)
            return np.floor(g + 0.5) if protocol.round_y else g

        return [(level(sr), level(hr))]
    if protocol.y_only:
        return [(rgb_to_y(sr, protocol.round_y), rgb_to_y(hr, protocol.round_y))]
    return [(sr[..., c].astype(np.float64), hr[..., c].astype(np.float64)) for c in range(3)]


def psnr(sr: np.ndarray, hr: np.ndarray, scale: int, protocol: Protocol = DEFAULT_PROTOCOL,
         gray: bool = False) -> float:
    """PSNR in dB of two ``uint8`` RGB images under ``protocol`` (``inf`` when identical).

    ``gray`` says the HR file was single-channel (matters only with ``protocol.gray_as_y``).
    """
    planes = _prepare(sr, hr, scale, protocol, gray)
    mse = float(np.mean([np.mean((a - b) ** 2) for a, b in planes]))
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(protocol.data_range**2 / mse))


def _ssim_plane(a: np.ndarray, b: np.ndarray, protocol: Protocol) -> float:
    """Mean SSIM of one float64 plane pair: scikit-image's Gaussian SSIM with the protocol's window and
    constants, population covariances (MATLAB's ``ssim_index``), averaged over the windows that lie fully
    inside the plane (scikit-image crops the half-window border before the mean: MATLAB's 'valid')."""
    from skimage.metrics import structural_similarity

    if min(a.shape) < protocol.ssim_window:
        raise ValueError(f"image plane {a.shape} smaller than the {protocol.ssim_window}x{protocol.ssim_window} "
                         "SSIM window")
    radius = (protocol.ssim_window - 1) // 2
    return float(structural_similarity(
        a, b, gaussian_weights=True, sigma=protocol.ssim_sigma, truncate=radius / protocol.ssim_sigma,
        use_sample_covariance=False, data_range=protocol.data_range, K1=protocol.ssim_k1, K2=protocol.ssim_k2))


def ssim(sr: np.ndarray, hr: np.ndarray, scale: int, protocol: Protocol = DEFAULT_PROTOCOL,
         gray: bool = False) -> float:
    """SSIM (Wang et al.) of two ``uint8`` RGB images under ``protocol`` (``gray`` as in :func:`psnr`)."""
    planes = _prepare(sr, hr, scale, protocol, gray)
    return float(np.mean([_ssim_plane(a, b, protocol) for a, b in planes]))


def tensor_to_uint8(t) -> np.ndarray:
    """A float [0, 1] image tensor (``CHW`` or ``1CHW``) -> ``uint8`` ``HWC``: clamp, x255, round half up."""
    import torch

    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"tensor_to_uint8 takes one image, got batch {t.shape[0]}")
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"tensor_to_uint8 expects CHW or 1CHW, got {tuple(t.shape)}")
    t = torch.floor(t.detach().float().clamp(0.0, 1.0) * 255.0 + 0.5)
    return t.permute(1, 2, 0).to(torch.uint8).cpu().numpy()


def uint8_to_tensor(img: np.ndarray, device="cpu"):
    """``uint8`` ``HWC`` RGB -> float32 ``1CHW`` tensor in [0, 1] (the models' input convention)."""
    import torch

    x = torch.from_numpy(np.array(img, dtype=np.uint8, order="C", copy=True)).to(device)
    return x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
