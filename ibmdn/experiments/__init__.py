"""One function per paper artifact, each returning a tidy DataFrame (written by :mod:`ibmdn.results`).

* :mod:`ibmdn.experiments.audit`: parameter audit of every network of Tables I-VI (``ibmdn audit``).
* :mod:`ibmdn.experiments.checkpoints`: the published checkpoints and bicubic on the four benchmarks.
* :mod:`ibmdn.experiments.tables`: Tables I-VI (train under a profile, evaluate, compare with the paper).
* :mod:`ibmdn.experiments.figures`: Fig. 4, the PSNR / parameters / latency trade-off, IBMDN's operators.
* :mod:`ibmdn.experiments.walkthrough`: involution, BSConv, distillation and CHFAB on a real image.
* :mod:`ibmdn.experiments.readme`: renders results/*.csv into the README's marked sections.

The notebooks (``notebooks/*.ipynb``, run by ``make paper``) are one call into these each.

Modules are imported on use, so that importing :mod:`ibmdn.experiments` stays cheap.
"""
