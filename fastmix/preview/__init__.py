"""``python -m fastmix preview``: one mixed batch drawn as a grid (not loaded by ``import fastmix``).

    cli.py           the command: a DataLoader with fastmix.MixupCollate, the grid and its labels
    procedural.py    the built-in image set (6 colours x 6 shapes)
    image_folder.py  --images DIR
"""
