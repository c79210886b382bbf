"""One function per paper artifact, each returning a tidy DataFrame (written by :mod:`ibmdn.results`).

* :mod:`ibmdn.experiments.audit`: parameter audit of every network of Tables I-VI (``ibmdn audit``).
* :mod:`ibmdn.experiments.readme`: renders results/*.csv into the README's marked sections.

Modules are imported on use, so that importing :mod:`ibmdn.experiments` stays cheap.
"""
