"""Training: recipes (:mod:`~ibmdn.train.config`), patches (:mod:`~ibmdn.train.data`), losses, the loop
(:mod:`~ibmdn.train.trainer`, over a task of :mod:`~ibmdn.train.task`), the Table V GAN (:mod:`~ibmdn.train.gan`) and DDP
(:mod:`~ibmdn.train.distributed`).

``ibmdn train --model NAME --scale S --profile smoke|short|paper`` is
:func:`ibmdn.train.trainer.train_command`.
"""

from ibmdn.train.config import PROFILES, TrainConfig, resolve_config
from ibmdn.train.trainer import lr_at, run_progress, train

__all__ = ["PROFILES", "TrainConfig", "lr_at", "resolve_config", "run_progress", "train"]
