"""``ibmdn export``: the networks as ONNX graphs, and the ONNX Runtime engine of ``ibmdn upscale``.

    ibmdn export ibmdn_stable --scale 4 --out ibmdn_stable_x4.onnx
    ibmdn upscale photo.png --scale 4 --engine onnxruntime --out upscaled/

What is exported is what ``ibmdn upscale`` runs: the network with its trained weights (the shipped ones
by default, :func:`ibmdn.shipped.resolve_weights`), re-parameterised for inference
(:func:`ibmdn.fuse.fuse_for_inference`; ``--no-fuse`` exports the trained form in eval mode). The graph
takes ``lr``, ``N x 3 x H x W`` float32 RGB in [0, 1] as the networks do, and returns ``sr``,
``N x 3 x sH x sW`` (not clamped: clamping and rounding belong to the caller, as in PyTorch); batch,
height and width are dynamic axes. Only standard ONNX operators (opset 18) occur.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (``torch.export``, then ONNX Script's translation),
without ONNX Script's graph optimiser (minutes on these graphs; ONNX Runtime optimises the graph when it
loads it). Two forms are changed before the export, both the same function with the same weights
(:func:`prepare_for_export`): involutions apply their kernel in the ``conv`` form
(:func:`ibmdn.ops.involution.involution_conv`: the unfolded columns made by one grouped one-hot ``Conv``;
``F.unfold`` itself exports as index ``Gather`` nodes, which ONNX Runtime runs several times slower
than that ``Conv``, and the ``shift`` form's K^2 shifted slices take twice as long to export, each
slice carrying symbolic sizes), and ESRT's token segments become one masked attention call
(:class:`SegmentAttention`).
The tracing input has batch 2 and H != W, so that none of the three axes is specialised; an export that
specialises one anyway is refused.

Exact tiling under ONNX Runtime. A layer that pools over the whole image
(:class:`~ibmdn.attention.cca.GlobalStatistic`: CCA's and CHFAB's contrast + mean) cannot be computed from
one tile. The *statistics form* of a graph (``--stats-io``; :func:`export_onnx` with ``stats_io=True``)
makes them explicit: global-statistic layer ``k`` (in module order) takes its statistic from an extra
input ``stat{k}`` (``1 x C_k x 1 x 1``) instead of computing it, and the feature map it would have pooled
is an extra output ``feat{k}``; the batch is 1. :class:`OrtNetwork` cuts that one graph into ``n + 1``
graphs (:func:`prune_graph`): ``lr, stat0..stat{k-1} -> feat{k}`` for each ``k``, and ``lr,
stat0..stat{n-1} -> sr``; :func:`ibmdn.inference.tiled_exact` runs its passes over the tiles with them
(:meth:`OrtNetwork.run_until`) exactly as it runs a PyTorch network with hooks.

Cache: ``ibmdn upscale --engine onnxruntime`` exports on first use and keeps the graphs in
``<cache>/onnx/`` (:func:`ibmdn.data.datasets.cache_root`: ``$IBMDN_CACHE``, else
``$XDG_CACHE_HOME/ibmdn``, else ``~/.cache/ibmdn``), keyed by the sha256 of the network's module
structure, every parameter and buffer, the form (plain or statistics) and the versions of torch, ONNX
Script and this package.

Not exported: ``bicubic`` (its MATLAB resampling matrices are computed in numpy for each input size, so
it has no graph with dynamic axes; any image library's bicubic resize is the deployable equivalent) and
the GAN discriminators (training only). ONNX Runtime runs fp32 only here.

Optional dependencies: ``onnx``, ``onnxscript`` and ``onnxruntime`` (``pip install 'ibmdn[onnx]'``),
imported only when an export or the engine is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ibmdn.errors import IbmdnError
from ibmdn.inference import global_statistic_layers, stats_hooks

OPSET = 18
INPUT, OUTPUT = "lr", "sr"
EXAMPLE_SHAPE = (2, 3, 24, 20)
"""Shape of the tracing input (module docstring)."""
CHECK_SIZES = ((24, 20), (17, 23))
"""LR sizes :func:`check_export` compares on (an odd-sized one included)."""
CHECK_TOLERANCE = 1e-4
INSTALL_HINT = "pip install 'ibmdn[onnx]'"


class OnnxUnavailableError(IbmdnError, ImportError):
    """``onnx``, ``onnxscript`` or ``onnxruntime`` is not installed."""


def require_onnx() -> None:
    """Import the optional ONNX packages or raise :class:`OnnxUnavailableError`."""
    import importlib

    for mod in ("onnx", "onnxscript", "onnxruntime"):
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise OnnxUnavailableError(f"ONNX export and the onnxruntime engine need the optional packages "
                                       f"onnx, onnxscript and onnxruntime ({e}); install them with: "
                                       f"{INSTALL_HINT}") from None


def not_exportable(name: str) -> str | None:
    """Why registered network ``name`` is not exported, or None when it is."""
    from ibmdn.models import model_spec

    spec = model_spec(name)
    if spec.family == "bicubic":
        return ("bicubic computes its MATLAB resampling matrices in numpy for each input size, so it has no "
                "graph with dynamic axes; use an image library's bicubic resize")
    if "discriminator" in spec.summary.lower():
        return f"{name} is a GAN discriminator (used in training only)"
    return None


# ---------------------------------------------------------------------------------------- export


class StatsIO(nn.Module):
    """The statistics form of a network: ``forward(lr, stats) -> (sr, *feats)``, ``stats`` a list (module
    docstring)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.layers = global_statistic_layers(net)

    def forward(self, lr: torch.Tensor, stats: list[torch.Tensor]):
        index = {id(m): k for k, m in enumerate(self.layers)}
        feats: dict[int, torch.Tensor] = {}

        def hook(m, feat):
            feats[index[id(m)]] = feat
            return stats[index[id(m)]].to(feat.dtype)

        with stats_hooks(self.layers, hook):
            sr = self.net(lr)
        if sorted(feats) != list(range(len(self.layers))):
            raise RuntimeError("a global-statistic layer did not run exactly once")
        return (sr, *(feats[k] for k in range(len(self.layers))))


def image_statistics(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Each global-statistic layer's statistic (contrast + mean) on the whole of ``x``, in module order:
    the ``stat{k}`` inputs of the statistics form for an untiled image."""
    from ibmdn.attention.cca import contrast_and_mean

    layers = global_statistic_layers(net)
    got: dict[int, torch.Tensor] = {}

    def hook(m, feat):
        got[id(m)] = s = contrast_and_mean(feat)
        return s

    with stats_hooks(layers, hook), torch.inference_mode():
        net(x)
    return [got[id(m)] for m in layers]


class SegmentAttention(nn.Module):
    """ESRT's efficient attention (:class:`ibmdn.models.esrt.EfficientMultiHeadAttention`, whose weights it
    shares) with the token segments as one reshape instead of a Python loop over ``split``.

    The original cuts the ``N`` tokens into ``S = ceil(N / seg)`` segments of ``seg = max(1, N //
    num_splits)`` tokens, the last one shorter when ``seg`` does not divide ``N``; how many depends on
    ``N``, and ``torch.export`` records the count of the tracing input. Here the tokens are zero-padded to
    ``S * seg``, the segments are a batch dimension of one 4-D attention call (the only form ONNX Script
    translates), and a mask keeps the padding out of the keys: the same function for every ``N``.
    """

    def __init__(self, attention: nn.Module):
        super().__init__()
        self.attention = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        a = self.attention
        x = a.reduce(x)
        b, n, c = x.shape
        heads, d = a.num_heads, c // a.num_heads
        q, k, v = a.qkv(x).reshape(b, n, 3, heads, d).permute(2, 0, 3, 1, 4)  # each (b, heads, n, d)
        seg = torch.sym_max(1, n // a.num_splits)
        count = (n + seg - 1) // seg

        def segments(t):  # (b, heads, n, d) -> (b, heads * count, seg, d)
            return F.pad(t, (0, 0, 0, count * seg - n)).reshape(b, heads * count, seg, d)

        real = torch.arange(count * seg, device=x.device) < n
        mask = real.reshape(1, count, 1, seg).expand(heads, count, 1, seg).reshape(1, heads * count, 1, seg)
        y = F.scaled_dot_product_attention(segments(q), segments(k), segments(v), attn_mask=mask,
                                           scale=a.attn_scale)
        y = y.reshape(b, heads, count * seg, d)[:, :, :n]
        return a.proj(y.transpose(1, 2).reshape(b, n, c))


EXPORT_FORM = 2
"""Version of what :func:`prepare_for_export` exports, part of the cache key: 2 = involutions in the
``conv`` form (1 was ``unfold``). Bump it when the exported form of a network changes."""


def prepare_for_export(model: nn.Module) -> nn.Module:
    """An eval copy of ``model`` in its exported form (module docstring): involutions in the ``conv``
    implementation, ESRT's attention as :class:`SegmentAttention`."""
    import copy

    from ibmdn.models.esrt import EfficientMultiHeadAttention
    from ibmdn.ops.involution import set_involution_impl

    m = set_involution_impl(copy.deepcopy(model).eval(), "conv")
    for name, child in list(m.named_modules()):
        if isinstance(child, EfficientMultiHeadAttention):
            parent, _, attr = name.rpartition(".")
            setattr(m.get_submodule(parent) if parent else m, attr, SegmentAttention(child))
    return m


def export_onnx(model: nn.Module, *, stats_io: bool = False, metadata: dict | None = None):
    """The ONNX ``ModelProto`` of ``model`` (an ``nn.Module`` taking ``N x 3 x H x W`` in [0, 1]).

    Args:
        model: the network as it should run (fused or not); copied, not modified.
        stats_io: export the statistics form (module docstring) instead of the plain graph.
        metadata: string key/values stored in the model's ``metadata_props``.
    """
    require_onnx()
    net = prepare_for_export(model)
    x = torch.rand(*EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(0))
    dim = torch.export.Dim
    lr_axes = {0: dim("batch"), 2: dim("height"), 3: dim("width")}
    args, shapes, inputs, outputs = (x,), (lr_axes,), [INPUT], [OUTPUT]
    n = len(global_statistic_layers(net))
    stats_io = stats_io and n > 0
    if stats_io:  # batch 1: a dynamic batch would be read from the shape of some stat{k} (a needless input)
        x = x[:1]
        del lr_axes[0]
        args = (x, [torch.rand_like(s) for s in image_statistics(net, x)])
        shapes = (lr_axes, [None] * n)
        inputs += [f"stat{k}" for k in range(n)]
        outputs += [f"feat{k}" for k in range(n)]
        net = StatsIO(net)
    try:  # the exporter reports progress on stdout and warns about its own internals
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(net, args, dynamo=True, input_names=inputs, output_names=outputs,
                                        opset_version=OPSET, dynamic_shapes=shapes, optimize=False,
                                        external_data=False, verbose=False)
    except Exception as e:  # the exporter's errors are long reports: keep their first line
        first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise IbmdnError(f"ONNX export failed ({type(e).__name__}): {first[:300]}") from e
    proto = program.model_proto
    free = [bool(d.dim_param) for d in proto.graph.input[0].type.tensor_type.shape.dim]
    if free != [not stats_io, False, True, True]:  # the exporter falls back to fixed sizes when it must
        raise IbmdnError("ONNX export specialised the batch, height or width axis of the input")
    for k, v in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(k), str(v)
    return proto


def session(model_bytes: bytes, providers: list[str] | None = None):
    """An ONNX Runtime inference session with as many intra-op threads as torch uses."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, so, providers=providers or ["CPUExecutionProvider"])


def check_export(model: nn.Module, proto, sizes=CHECK_SIZES, seed: int = 0) -> float:
    """Largest absolute difference between ``model`` (PyTorch) and its graph ``proto`` (ONNX Runtime) on
    uniform random LR images of ``sizes``; a statistics-form graph gets the whole image's statistics."""
    import numpy as np

    sess = session(proto.SerializeToString())
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=g)
        with torch.inference_mode():
            ref = model(x).numpy()
        feeds = {INPUT: x.numpy()}
        if len(proto.graph.input) > 1:
            feeds.update({f"stat{k}": s.numpy() for k, s in enumerate(image_statistics(model, x))})
        got = sess.run([OUTPUT], feeds)[0]
        if got.shape != ref.shape:
            raise IbmdnError(f"the exported graph returns shape {got.shape} for LR {h}x{w}, PyTorch "
                             f"{ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def prune_graph(proto, inputs: list[str], outputs: list[str]):
    """The part of ``proto``'s graph that computes ``outputs`` from the graph inputs ``inputs``.

    Nodes keep their (topological) order; initializers and inputs that no kept node reads are dropped
    (``lr`` stays). Raises ``ValueError`` when an output needs a graph input outside ``inputs``.
    """
    import onnx
    from onnx import helper

    g = proto.graph
    producer = {o: i for i, node in enumerate(g.node) for o in node.output if o}
    graph_inputs = {v.name: v for v in g.input}
    keep: set[int] = set()
    used: set[str] = set()
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in graph_inputs:
            used.add(name)
        elif name in producer and producer[name] not in keep:
            keep.add(producer[name])
            stack += [i for i in g.node[producer[name]].input if i]
    if used - set(inputs):
        raise ValueError(f"outputs {outputs} need graph inputs {sorted(used - set(inputs))} beyond {inputs}")
    nodes = [g.node[i] for i in sorted(keep)]
    read = {i for node in nodes for i in node.input}
    outs = {v.name: v for v in g.output}
    graph = helper.make_graph(nodes, g.name, [graph_inputs[n] for n in inputs if n in used or n == INPUT],
                              [outs[n] for n in outputs],
                              initializer=[t for t in g.initializer if t.name in read])
    model = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    model.metadata_props.extend(proto.metadata_props)
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------------------- engine


def fingerprint(model: nn.Module, context: dict) -> str:
    """sha256 (hex) of ``context``, ``model``'s module structure and every parameter and buffer (their
    names, dtypes, shapes and bytes; 0-d buffers such as BatchNorm's step count included)."""
    h = hashlib.sha256(json.dumps(context, sort_keys=True).encode())
    h.update(repr(model).encode())
    for key, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{key}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cached_export(model: nn.Module, name: str, scale: int, *, stats_io: bool = False, cache_dir=None,
                  log: Callable[[str], None] | None = None) -> bytes:
    """The serialised graph of ``model``, read from the cache or exported (and stored) now."""
    import onnxscript

    from ibmdn import __version__
    from ibmdn.data.datasets import cache_root
    from ibmdn.fileio import atomic_write_bytes

    key = fingerprint(model, {"torch": torch.__version__, "onnxscript": onnxscript.__version__,
                              "ibmdn": __version__, "opset": OPSET, "stats_io": stats_io, "form": EXPORT_FORM})
    folder = cache_root(cache_dir) / "onnx"
    path = folder / f"{name}_x{scale}{'_stats' if stats_io else ''}_{key[:20]}.onnx"
    if path.is_file():
        return path.read_bytes()
    if log:
        form = " (statistics form)" if stats_io else ""
        log(f"exporting {name} x{scale}{form} to ONNX (once; cached in {folder})")
    data = export_onnx(model, stats_io=stats_io).SerializeToString()
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        warnings.warn(f"ONNX cache {folder} not writable ({e}); set $IBMDN_CACHE", stacklevel=2)
    return data


def providers_for(device: str | None) -> list[str]:
    """ONNX Runtime execution providers for ``--device`` (``auto``: CUDA when onnxruntime has it)."""
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device in (None, "", "auto"):
        device = "cuda" if cuda else "cpu"
    if str(device).startswith("cuda"):
        if not cuda:
            raise IbmdnError("the installed onnxruntime has no CUDA execution provider (install "
                             "onnxruntime-gpu) or pass --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if str(device) != "cpu":
        raise IbmdnError(f"--engine onnxruntime runs on cpu or cuda, not {device!r}")
    return ["CPUExecutionProvider"]


class OrtNetwork:
    """A network run by ONNX Runtime, called like the ``nn.Module`` it was exported from.

    ``engine(x)`` maps a ``N x 3 x H x W`` float32 tensor to the output tensor (on the CPU);
    :meth:`run_until` is what :func:`ibmdn.inference.tiled_exact` needs for exact tiling. ``network`` is the
    PyTorch module (fp32, eval mode): its structure decides the receptive radius and whether exact tiling
    applies. Graphs are exported (or read from the cache, ``cache=False``: never) when first needed.
    """

    def __init__(self, network: nn.Module, name: str, scale: int, *, device: str | None = "cpu",
                 cache: bool = True, cache_dir=None, log: Callable[[str], None] | None = None):
        require_onnx()
        self.network, self.name, self.scale = network, name, scale
        self.providers = providers_for(device)
        self.cache, self.cache_dir, self.log = cache, cache_dir, log
        self.n_stats = len(global_statistic_layers(network))
        self._plain = None
        self._parts: list | None = None

    def _graph(self, stats_io: bool) -> bytes:
        if self.cache:
            return cached_export(self.network, self.name, self.scale, stats_io=stats_io,
                                 cache_dir=self.cache_dir, log=self.log)
        return export_onnx(self.network, stats_io=stats_io).SerializeToString()

    @property
    def plain(self):
        """The session of the plain graph (``lr -> sr``)."""
        if self._plain is None:
            self._plain = session(self._graph(False), self.providers)
        return self._plain

    def parts(self) -> list:
        """``n + 1`` sessions: ``lr, stat0..stat{k-1} -> feat{k}`` for each k, then ``lr, stat* -> sr``."""
        if self._parts is None and self.n_stats == 0:
            self._parts = [self.plain]
        if self._parts is None:
            import onnx

            proto = onnx.load_from_string(self._graph(True))
            stats = [f"stat{k}" for k in range(self.n_stats)]
            cut = [prune_graph(proto, [INPUT, *stats[:k]], [f"feat{k}"]) for k in range(self.n_stats)]
            cut.append(prune_graph(proto, [INPUT, *stats], [OUTPUT]))
            self._parts = [session(p.SerializeToString(), self.providers) for p in cut]
        return self._parts

    @staticmethod
    def _run(sess, output: str, feeds: dict) -> torch.Tensor:
        names = {i.name for i in sess.get_inputs()}
        arrays = {k: v.detach().to("cpu", torch.float32).contiguous().numpy()
                  for k, v in feeds.items() if k in names}
        return torch.from_numpy(sess.run([output], arrays)[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.plain, OUTPUT, {INPUT: x})

    def run_until(self, x: torch.Tensor, stats: list[torch.Tensor], upto: int | None = None) -> torch.Tensor:
        """With the statistics ``stats`` of the first global-statistic layers supplied: the feature map that
        layer ``upto`` pools, or the network's output when ``upto`` is None (all statistics supplied)."""
        feeds = {INPUT: x, **{f"stat{k}": s for k, s in enumerate(stats)}}
        if upto is None:
            return self._run(self.parts()[-1], OUTPUT, feeds)
        return self._run(self.parts()[upto], f"feat{upto}", feeds)


# ---------------------------------------------------------------------------------------- command


def export_command(args) -> int:
    """``ibmdn export NAME --scale S [--weights W] [--out PATH] [--no-fuse] [--stats-io] [--overwrite]``."""
    require_onnx()
    from ibmdn import __version__
    from ibmdn.fileio import atomic_write_bytes
    from ibmdn.shipped import load_model

    try:
        why = not_exportable(args.name)
    except KeyError as e:
        raise IbmdnError(str(e).strip("'\"")) from None
    if why:
        raise IbmdnError(f"{args.name} is not exported: {why}")
    out = Path(args.out or f"{args.name}_x{args.scale}{'_stats' if args.stats_io else ''}.onnx")
    if out.exists() and not args.overwrite:
        raise IbmdnError(f"{out} exists (pass --overwrite to replace it)")
    model, desc = load_model(args.name, args.scale, args.weights, args.weights_root, fuse=not args.no_fuse)
    form = "as trained (unfused)" if args.no_fuse else "fused for inference"
    print(f"{args.name} x{args.scale} ({desc}), {form}{', statistics form' if args.stats_io else ''}",
          file=sys.stderr)
    meta = {"ibmdn_network": args.name, "ibmdn_scale": args.scale, "ibmdn_weights": desc,
            "ibmdn_fused": not args.no_fuse, "ibmdn_stats_io": args.stats_io, "ibmdn_version": __version__}
    proto = export_onnx(model, stats_io=args.stats_io, metadata=meta)
    err = check_export(model, proto)
    if err > CHECK_TOLERANCE:
        raise IbmdnError(f"the exported graph differs from PyTorch by {err:.2e} (> {CHECK_TOLERANCE:g}); "
                         f"nothing written")
    atomic_write_bytes(out, proto.SerializeToString())
    inputs = ", ".join(i.name for i in proto.graph.input)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB; inputs {inputs}; "
          f"max |ONNX Runtime - PyTorch| {err:.1e} on LR {', '.join(f'{h}x{w}' for h, w in CHECK_SIZES)})",
          file=sys.stderr)
    return 0
