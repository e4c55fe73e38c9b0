"""``python -m fastmix bench``: the command-line benchmark (not loaded by ``import fastmix``).

    cli.py        the command: scenarios on the CPU, the table, --json, --plot
    device.py     the --device cuda scenarios and the CUDA-event timer
    pipeline.py   --pipeline: a real DataLoader over built-in JPEGs, images/s with and without mixing
    timing.py     interleaved medians, rows, scenarios
    baselines.py  the naive formulas and the floors the rows are compared with
    peers.py      timm as a peer (its mixup.py loaded alone where its package import fails)
    plot.py       --plot
"""
