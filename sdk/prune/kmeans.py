"""K-means++ (Arthur & Vassilvitskii 2007) in numpy: small inputs (one row per channel), deterministic by seed."""
import numpy as np


def kmeans_pp_init(x, k, rng):
    """Seed centres: the first at random, each next one drawn with probability proportional to D(x)^2."""
    n = len(x)
    centres = [x[rng.integers(n)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        # All remaining points coincide with a centre: any point will do.
        idx = rng.integers(n) if total <= 0 else rng.choice(n, p=d2 / total)
        centres.append(x[idx])
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    return np.stack(centres)


def kmeans(x, k, seed=0, iters=100, tol=1e-6):
    """Cluster rows of `x` (n, d) into `k` groups. Returns (labels (n,), centres (k, d), inertia)."""
    x = np.asarray(x, np.float64)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    rng = np.random.default_rng(seed)
    centres = kmeans_pp_init(x, k, rng)
    labels = np.zeros(n, np.int64)
    for _ in range(iters):
        d2 = ((x[:, None, :] - centres[None]) ** 2).sum(2)
        labels = d2.argmin(1)
        new = centres.copy()
        for j in range(k):
            members = x[labels == j]
            if len(members):
                new[j] = members.mean(0)
            else:  # an emptied cluster takes the point farthest from its centre
                far = d2[np.arange(n), labels].argmax()
                new[j] = x[far]
                labels[far] = j
        shift = ((new - centres) ** 2).sum()
        centres = new
        if shift <= tol:
            break
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(2)
    labels = d2.argmin(1)
    inertia = float(d2[np.arange(n), labels].sum())
    return labels, centres, inertia
