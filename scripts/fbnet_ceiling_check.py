#!/usr/bin/env python3
"""Side checks behind docs/performance.md's "additive ceiling" paragraph (FBNet latency table).

Not part of the build or of CI; needs numpy (Debian python3-numpy). Reproduces, on
../shared/data/fbnet/fbnet_latency_ms.csv:
  1. interactions: ridge on the one-hot encoding of every layer's op plus every adjacent pair of
     layers' ops, fitted on 4,000 rows, against the one-hot encoding alone, on the other 1,000;
  2. per-op sums of MACs and activation bytes beside features close to the library's best
     (stage counts, first blocks as 0.316-scaled deviations, four of its five linear costs x10,
     network-wide counts), 100 training rows, medians over 10 seeds;
  3. a neighbour column's complete additive fit as one more nearly unpenalised feature.
Every ridge's lambda is chosen by exact leave-one-out error on its training rows (as
RidgeRegression::leave_one_out() does), from 1e-3 to 1000, except the neighbour's complete fit
in 3, at 1e-3 like the library's additive ceiling.
The analytic costs here are this script's approximation of FBNet's blocks, not the library's.
    /usr/bin/python3 scripts/fbnet_ceiling_check.py [SHARED_DATA_DIR]   (a python3 with numpy)
"""
import csv
import sys

import numpy as np

data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
rows = list(csv.DictReader(open(f"{data}/fbnet/fbnet_latency_ms.csv")))
devices = list(rows[0].keys())[3:]
A = np.array([[int(x) for x in r["op_idx_list"].split("-")] for r in rows])
Y = {d: np.array([float(r[d]) for r in rows]) for d in devices}
N = len(rows)

# (kernel, expansion, groups) of the 9 blocks; None = skip. Stages: (width, depth, stride).
BLOCKS = [(3, 1, 1), (3, 1, 2), (3, 3, 1), (3, 6, 1), (5, 1, 1), (5, 1, 2), (5, 3, 1), (5, 6, 1), None]
STAGES = [(16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1)]
layers, stage_of, cin, res = [], [], 16, 32
for s, (out, depth, stride) in enumerate(STAGES):
    for i in range(depth):
        st = stride if i == 0 else 1
        layers.append((cin, out, st, res))
        stage_of.append(s)
        res //= st
        cin = out


def layer_cost(layer, block):
    """MACs, activation bytes (elements), params, has-MACs of one layer."""
    cin, cout, st, res = layer
    ro = res // st
    if block is None:
        if cin == cout and st == 1:
            return 0.0, 0.0, 0.0, 0.0
        return ro * ro * cin * cout, res * res * cin + ro * ro * cout, cin * cout, 1.0
    k, e, g = block
    mid = e * cin
    macs = res * res * cin * mid / g + ro * ro * mid * k * k + ro * ro * mid * cout / g
    acts = res * res * cin + res * res * mid + ro * ro * mid + ro * ro * cout
    return macs, acts, cin * mid / g + mid * k * k + mid * cout / g, 1.0


C = np.zeros((N, 22, 4))
for j, layer in enumerate(layers):
    for o in range(9):
        C[A[:, j] == o, j] = layer_cost(layer, BLOCKS[o])


def standardised(X, weight):
    sd = X.std(0)
    sd[sd == 0] = 1
    return (X - X.mean(0)) / sd * weight


def ridge_loo(X, y, lambdas=(1e-3, 3e-3, 1e-2, 3e-2, .1, .3, 1, 3, 10, 30, 100, 300, 1000)):
    """Ridge (centred, intercept unpenalised) with lambda of least exact leave-one-out error."""
    mu, ym = X.mean(0), y.mean()
    U, S, Vt = np.linalg.svd(X - mu, full_matrices=False)
    uy = U.T @ (y - ym)
    best = None
    for lam in lambdas:
        f = S**2 / (S**2 + lam)  # the hat matrix is U diag(f) U^T; only its diagonal is needed
        r = (y - ym) - U @ (f * uy)
        h = (U**2) @ f + 1 / len(y)
        loo = np.mean((r / (1 - h)) ** 2)
        if best is None or loo < best[0]:
            best = (loo, lam)
    w = Vt.T @ ((S / (S**2 + best[1])) * uy)
    return lambda Z: (Z - mu) @ w + ym


def spearman(a, b):
    return np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]


def median_spearman(X, y, seeds=10, train=100):
    out = []
    for seed in range(seeds):
        idx = np.random.default_rng(seed).permutation(N)
        f = ridge_loo(X[idx[:train]], y[idx[:train]])
        out.append(spearman(f(X[idx[train:]]), y[idx[train:]]))
    return np.median(out)


onehot = np.zeros((N, 22 * 9))
for j in range(22):
    onehot[np.arange(N), j * 9 + A[:, j]] = 1
counts = np.stack([(A == o).sum(1) for o in range(9)], 1).astype(float)
stage_counts = np.zeros((N, 7 * 9))
for j in range(22):
    stage_counts[np.arange(N), stage_of[j] * 9 + A[:, j]] += 1
firsts = [j for j in range(22) if (j == 0 or stage_of[j] != stage_of[j - 1]) and STAGES[stage_of[j]][1] > 1]
deviations = np.hstack([onehot[:, j * 9:(j + 1) * 9] * 0.31622777 for j in firsts])
# MACs, params, activation bytes, layers with MACs. The library's fifth, all layers, counts its
# own decomposition of each block into layers; it is a sum of per-(position, op) constants
# (a skip projects only where the width or stride changes), so the stage counts with the first
# blocks' deviations span it nearly, and this script leaves it out.
linear = standardised(np.stack([C[:, :, 0].sum(1), C[:, :, 2].sum(1), C[:, :, 1].sum(1),
                                C[:, :, 3].sum(1)], 1), 10.0)
base = np.hstack([stage_counts, deviations, linear, counts])
per_op = np.hstack([np.stack([(C[:, :, 0] * (A == o)).sum(1) for o in range(9)], 1),
                    np.stack([(C[:, :, 1] * (A == o)).sum(1) for o in range(9)], 1)])

print("1. held-out Spearman from 4,000 rows: one-hot alone vs plus adjacent pairs")
pairs = np.zeros((N, 21 * 81))
for j in range(21):
    pairs[np.arange(N), j * 81 + A[:, j] * 9 + A[:, j + 1]] = 1
idx = np.random.default_rng(0).permutation(N)
tr, te = idx[:4000], idx[4000:]
for d in ["1080ti_1", "1080ti_32", "silver_4114", "gold_6240", "samsung_a50", "samsung_s7", "essential_ph_1"]:
    got = [spearman(ridge_loo(X[tr], Y[d][tr])(X[te]), Y[d][te]) for X in (onehot, np.hstack([onehot, pairs]))]
    print(f"  {d}: one-hot {got[0]:.3f}, plus adjacent pairs {got[1]:.3f}")

print("2. 100 samples, medians of 10 seeds: base features vs plus per-op MACs and bytes (x1)")
for d in devices:
    print(f"  {d}: {median_spearman(base, Y[d]):.3f} -> {median_spearman(np.hstack([base, standardised(per_op, 1.0)]), Y[d]):.3f}")

print("3. plus a neighbour column's complete additive fit (x10)")
for target, source in [("gold_6240", "silver_4210r"), ("silver_4114", "silver_4210r"), ("1080ti_1", "titanx_1")]:
    prior = ridge_loo(np.hstack([stage_counts, deviations]), Y[source], lambdas=(1e-3,))(np.hstack([stage_counts, deviations]))
    with_prior = np.hstack([base, standardised(prior[:, None], 10.0)])
    print(f"  {target} from {source}: {median_spearman(base, Y[target]):.3f} -> {median_spearman(with_prior, Y[target]):.3f}")
