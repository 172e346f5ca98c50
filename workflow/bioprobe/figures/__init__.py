"""The study's figures and comparison table, regenerated from the pipeline's result files.

* :mod:`.style`: one style for all (sizes, fonts, the colour and marker of each model)
* :mod:`.roles`: which models each figure compares (the config's ``figures:``; cheap, no plotting)
* :mod:`.data`: layer curves, confusion counts and per-class recall read from result files
* :mod:`.layerwise`: layer-wise UAR (every model per dataset; study figures 1 and 2)
* :mod:`.comparison`: study figure 3, the comparison table (Markdown, LaTeX, CSV)
* :mod:`.confusion`: study figure 4, confusion matrices of the fusions
* :mod:`.published`: published numbers, matched by model key, and published against reproduced
* :mod:`.perclass`: per-class recall against layer

Nothing heavy is imported here: the Snakefile imports :mod:`.roles` at parse time.
"""
