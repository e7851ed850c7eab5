"""Rules of the bronze tables beyond their schemas' column rules and the row rules of ingest
(etl.transforms.ingest.IngestRules, which quarantine rows instead of failing the stage)."""
from __future__ import annotations

from schemas import Expectation, TableSchema


def fixed_width(table: TableSchema) -> Expectation:
    """Every row's features array has the same length (the trainer reads them as one matrix)."""
    return Expectation("UnexpectedRowsExpectation", {
        "description": f"{table.name}: every features array has the same length",
        "unexpected_rows_query": "SELECT * FROM {batch} WHERE size(features) != "
                                 "(SELECT max(size(features)) FROM {batch})"})
