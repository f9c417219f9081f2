"""Built-in PyTorch trainables. Each is a plain ``train(config, ctx)`` function.

- ``digits_mlp``: an MLP on scikit-learn's digits (N = 1,438 training images).
- ``synthetic_mlp``: an MLP on seeded synthetic data of exactly ``n_samples`` (N = 10,000 by default).
"""
