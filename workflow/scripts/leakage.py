import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.leakage import write_leakage_table
from bioprobe.smk import logged

with logged(snakemake):
    wc, inp, params = snakemake.wildcards, snakemake.input, snakemake.params
    named = {s: (summary, split) for s, summary, split in zip(params.splits, inp.summaries, inp.splits)}
    write_leakage_table({"dataset": wc.dataset, "model": wc.model, "probe": wc.probe}, (inp.main, inp.main_split),
                        named, params.specs, params.main_method, snakemake.output.scores)
