"""Metrics: PSNR/SSIM on Y and the evaluation protocol (:mod:`.quality`), LPIPS offline (:mod:`.lpips`),
parameters / multiply-adds / latency / memory (:mod:`.complexity`)."""
