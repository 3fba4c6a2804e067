"""Baseline for the simulation benchmark: the per-sample Python loop of the course's seed script.

This is how the lecture notes' script simulates minibatch SGD on the 2-D data model: one
trial at a time, one step at a time, and the minibatch gradient accumulated sample by sample
in a Python loop. It is kept only to measure how much faster ``nqm_lib.simulate`` is.
"""

import numpy as np


def per_sample_loop_sgd(h, sigma, theta0, *, lr, batch_size, steps, trials, seed=0):
    """Mean over trials of L(θ_t), t = 0..steps, computed with explicit Python loops."""
    rng = np.random.default_rng(seed)
    h = np.asarray(h, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    risk = np.zeros(steps + 1)
    for _ in range(trials):
        theta = np.array(theta0, dtype=float)
        risk[0] += 0.5 * np.sum(h * theta**2)
        for t in range(1, steps + 1):
            batch = rng.normal(0.0, sigma, size=(batch_size, h.size))
            gradient = np.zeros_like(theta)
            for sample in batch:
                for i in range(h.size):
                    gradient[i] += h[i] * (theta[i] - sample[i])
            theta = theta - lr * gradient / batch_size
            risk[t] += 0.5 * np.sum(h * theta**2)
    return risk / trials
