"""The model zoo: GAN families over shared blocks, one trainer, one checkpoint format.

blocks.py (layers), spec.py (Family, ModelConfig), options.py (family options), the families
(dcgan.py, wgan_gp.py, resdcgan.py, stylegan2.py, srgan.py, cyclegan.py, ugatit.py),
objective.py (how a family trains one step), augment.py (ADA), unpaired.py (trainA/trainB
data), registry.py (name → family), data.py (real batches), trainer.py, run.py (new-run and resume
rules, then the trainer), flags.py (the named family flags of `ganeval train`), distributed.py
(torchrun), checkpoint.py, sampling.py (images from a checkpoint), translate.py (image-to-image
inference), inspect.py (layer activations), visualise.py (grids, GIF/MP4)."""
