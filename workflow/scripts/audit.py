import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.audit import policy_for, run_audit
from bioprobe.smk import logged

with logged(snakemake):
    run_audit(
        snakemake.wildcards.dataset,
        snakemake.input.clips,
        snakemake.params.root,
        accepted_out=snakemake.output.accepted,
        rejected_out=snakemake.output.rejected,
        warnings_out=snakemake.output.warnings,
        policy=policy_for(snakemake.config, snakemake.wildcards.dataset),
        sample_rate=snakemake.params.sample_rate,
    )
