#!/usr/bin/env python3
"""Writes a complete NAS-Bench-201 table with made-up but deterministic metrics, for the CLI
tests: `make_nb201_table.py OUT.csv additive|search`.
  additive: arch_str,lat   with lat = 1 + a cost per op (a linear model recovers it exactly)
  search:   arch_str,acc,lat with a trade-off between the two (for search tests)"""
import itertools
import sys

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
COST = [0.0, 0.1, 1.0, 3.0, 0.5]

out, kind = sys.argv[1], sys.argv[2]
with open(out, "w") as f:
    f.write("arch_str,lat\n" if kind == "additive" else "arch_str,acc,lat\n")
    for i, c in enumerate(itertools.product(range(5), repeat=6)):
        s = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*(OPS[k] for k in c))
        if kind == "additive":
            f.write(f"{s},{1 + sum(COST[k] for k in c)}\n")
        else:
            acc = sum((k in (2, 3)) * (j + 1) for j, k in enumerate(c)) + (i * 7919 % 1000) / 1000.0
            lat = 1 + sum(k * (6 - j) for j, k in enumerate(c)) + (i * 104729 % 100) / 100.0
            f.write(f"{s},{acc},{lat}\n")
