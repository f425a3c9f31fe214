"""SSIM nearest training images of generated images (``ganeval nearest``).

``embed`` (SSIM-like embeddings) → ``index`` (cached training index: pixels, screening
statistics, FAISS) → ``search`` (embedding candidates → strided-SSIM screen → exact SSIM)
→ ``copying`` (Meehan et al.'s C_T, Alaa et al.'s authenticity) → ``report`` (outputs);
``pipeline`` ties them together for the CLI. The SSIM itself lives in :mod:`ganeval.ssim`."""
