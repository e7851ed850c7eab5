"""Quality gates between stages: Great Expectations suites built from schemas, and their reports."""
from etl.checks.report import CheckReport, ExpectationOutcome
from etl.checks.runner import validate

__all__ = ["CheckReport", "ExpectationOutcome", "validate"]
