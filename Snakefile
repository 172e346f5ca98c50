# bioprobe: which layer of which self-supervised audio model best separates animal calls.
#
#   snakemake --cores 8 --resources gpu=1                  # the study (config.yaml)
#   snakemake --cores 2 --configfile resources/configs/demo.yaml   # offline demo
#
# Nothing heavy (torch, transformers) is imported here: the DAG of the whole study builds in
# well under a second. All logic lives in workflow/bioprobe.

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

WORKFLOW_DIR = Path(workflow.basedir) / "workflow"
sys.path.insert(0, str(WORKFLOW_DIR))

from bioprobe.config import validate_config

# The study's config unless a config file is given on the command line: --configfile replaces
# it whole, rather than being merged key by key into the study's datasets and models.
# (--config key=value overrides apply on top of either.)
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


_validated = validate_config(config)
config.clear()
config.update(_validated)


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/clips.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/resample.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/fuse.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/extensions_common.smk"
include: "workflow/rules/extensions.smk"
include: "workflow/rules/leakage.smk"


rule all:
    input:
        all_outputs(),
        extension_outputs(),
    default_target: True
