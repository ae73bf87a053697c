"""Tests of cape.readers."""
