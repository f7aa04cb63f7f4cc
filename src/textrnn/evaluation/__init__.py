"""Evaluation: metrics on labelled texts, report files and pictures, and runs compared side by side."""

from .compare import compare_runs, format_comparison
from .metrics import evaluate, format_metrics, write_report

__all__ = ["compare_runs", "evaluate", "format_comparison", "format_metrics", "write_report"]
