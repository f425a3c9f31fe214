"""The model zoo: GAN families over shared blocks, one trainer, one checkpoint format.

blocks.py (layers), spec.py (Family, ModelConfig), dcgan.py, wgan_gp.py, resdcgan.py (the
families), registry.py (name → family), data.py (real batches), trainer.py, distributed.py
(torchrun), checkpoint.py, sampling.py (images from a checkpoint), visualise.py (grids,
GIF/MP4)."""
