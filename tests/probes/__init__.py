"""Tests of bioprobe.probes (a package so that its test_config.py does not clash with tests/test_config.py)."""
