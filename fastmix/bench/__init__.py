"""``python -m fastmix bench``: the command-line benchmark (not loaded by ``import fastmix``).

    cli.py        the command: its arguments (checked before any timing), --pipeline, --json, --plot
    scenarios.py  what is timed on the CPU: each operation's rows (fastmix, naive, peers, floor); run
    inputs.py     what the rows are timed on: batches, labels, masks, samples, the fresh draws
                  (the helpers benchmarks/ uses too)
    report.py     what is printed and written: the table, the summary, the header, progress, JSON
    device.py     the --device cuda scenarios and the CUDA-event timer
    pipeline.py   --pipeline: a real DataLoader over built-in JPEGs, images/s with and without mixing
    timing.py     interleaved medians, rows, scenarios
    baselines.py  the naive formulas and the floors the rows are compared with
    peers.py      timm as a peer (its mixup.py loaded alone where its package import fails)
    plot.py       --plot
"""
