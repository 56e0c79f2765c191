"""Experiments: named collections of drift runs, with permissions."""
