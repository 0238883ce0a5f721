"""Reports: results.jsonl (one line per measurement), HTML extras, run summary."""

from harness.report.results import ResultsWriter, read_results

__all__ = ["ResultsWriter", "read_results"]
