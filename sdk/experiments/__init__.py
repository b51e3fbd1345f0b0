"""The layer above the library: the experiments that reproduce the papers' tables on a user's model and data.

- `precision`: one calibration, many quantized variants (sensitivity, partial and mixed-precision tables);
- `prune_sweep`: pruning levels x criteria, fine-tuned, exported, scored and timed (the trade-off table);
- `prune_steps`: the resumable steps of the pruning table scripts (one-shot, fine-tune, distill, gradual).

They are configuration on top of `sdk.compare.Comparator` (scores and interleaved timing) and `sdk.report`
(tables, JSON, plots, the machine). Nothing in the library imports this package (tests/test_cli_args.py).
"""
