#!/usr/bin/env python3
"""Writes a complete NAS-Bench-201 table with made-up but deterministic metrics, for the CLI
tests: `make_nb201_table.py OUT.csv additive|pruned|search`.
  additive: arch_str,lat   with lat = 1 + a cost per op (a linear model recovers it exactly)
  pruned:   arch_str,lat   the same over the edges a graph runtime keeps (nasforge::live_layers:
            an edge is dropped when its node reaches the cell output only through `none`, all
            of them when the output does not depend on the input)
  search:   arch_str,acc,lat with a trade-off between the two (for search tests)"""
import itertools
import sys

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
COST = [0.0, 0.1, 1.0, 3.0, 0.5]

EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]


def live_edges(c):
    """Per edge: does a graph runtime still run it (nasforge::live_layers' rules)."""
    reached = {0}
    for k, (i, j) in enumerate(EDGES):
        if c[k] != 0 and i in reached:
            reached.add(j)
    if 3 not in reached:
        return [False] * 6  # a constant output: nothing runs
    needed = {3}
    for k, (i, j) in reversed(list(enumerate(EDGES))):
        if c[k] != 0 and j in needed:
            needed.add(i)
    return [j in needed for (i, j) in EDGES]


out, kind = sys.argv[1], sys.argv[2]
with open(out, "w") as f:
    f.write("arch_str,acc,lat\n" if kind == "search" else "arch_str,lat\n")
    for i, c in enumerate(itertools.product(range(5), repeat=6)):
        s = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*(OPS[k] for k in c))
        if kind == "additive":
            f.write(f"{s},{1 + sum(COST[k] for k in c)}\n")
        elif kind == "pruned":
            f.write(f"{s},{1 + sum(COST[k] for k, live in zip(c, live_edges(c)) if live)}\n")
        else:
            acc = sum((k in (2, 3)) * (j + 1) for j, k in enumerate(c)) + (i * 7919 % 1000) / 1000.0
            lat = 1 + sum(k * (6 - j) for j, k in enumerate(c)) + (i * 104729 % 100) / 100.0
            f.write(f"{s},{acc},{lat}\n")
