"""Samples, measurements, statistics and budget verdicts."""

from harness.measure.core import Measurement, Sample, Stats, Verdict, check, stats_of

__all__ = ["Measurement", "Sample", "Stats", "Verdict", "check", "stats_of"]
