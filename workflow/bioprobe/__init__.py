"""bioprobe: layer-wise probing of self-supervised audio models on animal vocalizations.

The library holds all logic of the workflow; Snakemake rules and scripts only wire files.
Heavy dependencies (torch, transformers) are imported lazily inside the modules that need
them, so that importing :mod:`bioprobe` (and parsing the Snakefile) stays fast.
"""

__version__ = "0.1.0"
