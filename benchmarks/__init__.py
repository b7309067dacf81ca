"""Benchmarks of XtremeDistil on real NER data; run the scripts: python benchmarks/panx.py."""
