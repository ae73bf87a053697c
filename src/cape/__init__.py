"""CAPE: Contrasting by Augmented Patient Electrocardiograms.

A toolkit for patient-contrastive ECG foundation models: read clinical ECG
formats into a cohort store, pretrain with random or in-distribution batches,
extract features, train small heads and measure in- and out-of-distribution
performance with proper statistics.
"""

__version__ = "0.1.0"
