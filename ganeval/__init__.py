"""ganeval: measure whether an anime-face GAN is good."""
__version__ = "0.1.0"
