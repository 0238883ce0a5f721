"""Reports: the result record and results.jsonl, per-test extras, the overview, the network
matrix, summary.json, history and trends. Runs on the xdist controller only."""

from harness.report.collector import RunReport, environment_rows, readable_test_id
from harness.report.matrix import network_matrix
from harness.report.record import RECORD_VERSION, ResultRecord
from harness.report.results import ResultsWriter, read_records, read_results

__all__ = [
    "RECORD_VERSION",
    "ResultRecord",
    "ResultsWriter",
    "RunReport",
    "environment_rows",
    "network_matrix",
    "read_records",
    "read_results",
    "readable_test_id",
]
