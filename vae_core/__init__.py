"""The VAE of Pyro's "Variational Autoencoders" tutorial on MNIST: data, model,
training, checkpoints and analysis. No Streamlit here; the app lives in pages/.

Modules: config, data, model, train, checkpoint, analysis, cli.
"""
