"""SSIM nearest training images of generated images (``ganeval nearest``).

``embed`` (SSIM-like embeddings) → ``index`` (cached training index: pixels, screening
statistics, FAISS) → ``search`` (embedding candidates → strided-SSIM screen → exact SSIM)
→ ``copying`` (Meehan et al.'s C_T, Alaa et al.'s authenticity) → ``report`` (outputs,
hubness); ``features`` is the alternative search by cosine in a feature network's space
(``--space``); ``distributed`` shards queries under torchrun; ``pipeline`` ties them
together and ``api.find_nearest`` is the one entry point (the CLI calls it). The SSIM
itself lives in :mod:`ganeval.ssim`."""
