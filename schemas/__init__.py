"""The one definition of every grec table: Spark and Arrow schemas plus column-level expectations.

Jobs, quality checks and tests import from here; no schema is spelled twice.

    >>> from schemas import tables
    >>> tables.SWING_I2I.spark_schema().fieldNames()
    ['item_id', 'neighbor_id', 'score', 'n_common_users', 'rank']
"""
from schemas.columns import Col, Kind
from schemas.table import Expectation, TableSchema

__all__ = ["Col", "Kind", "Expectation", "TableSchema"]
