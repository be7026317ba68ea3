"""The VAE of Pyro's "Variational Autoencoders" tutorial on MNIST: data, model,
training, checkpoints and analysis. No Streamlit here; the app lives in pages/.

Modules: config, data, model, train, checkpoint, analysis, cli.
"""

# Modules that never import torch (2 s to import here), so that the app lists runs and paints Home
# before torch loads; torch comes in with the first view that needs a model. The one list of them,
# with ui's own in ui/__init__.py; tests/test_torch_free.py imports each in a fresh process.
TORCH_FREE = ("vae_core.cli", "vae_core.config", "vae_core.cpu", "vae_core.errors", "vae_core.files", "vae_core.forkserver", "vae_core.history", "vae_core.likelihoods",
              "vae_core.memory", "vae_core.monitor", "vae_core.npz", "vae_core.run_cache", "vae_core.runs", "vae_core.sizes",
              "vae_core.start", "vae_core.sweep", "vae_core.timeline", "vae_core.timeline_gif")
