"""Training and evaluation: fitting and fine-tuning (``fit``), PSNR/SSIM (``quality``) and the typed presets
(``presets``). Builds on ``graph`` and ``data``."""
