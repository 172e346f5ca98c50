"""Lets the rule scripts import bioprobe from this checkout, whether or not it was pip-installed
(for example inside a `--sdm conda` environment). Snakemake puts this folder on sys.path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
