"""Column specifications: a name, a logical kind, and the rules every row must satisfy."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, Sequence

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import types as T


class Kind(str, Enum):
    """Closed vocabulary of logical column types, mapped once to Spark and Arrow."""

    STRING = "string"
    LONG = "long"
    INT = "int"
    DOUBLE = "double"
    FLOAT = "float"
    TIMESTAMP = "timestamp"
    DATE = "date"
    FLOAT_ARRAY = "array<float>"
    LONG_ARRAY = "array<long>"
    INT_ARRAY = "array<int>"

    def spark(self) -> "T.DataType":
        return _spark_types()[self]

    def arrow(self) -> pa.DataType:
        return _ARROW[self]

    @property
    def gx_type(self) -> str:
        """Spark type name as Great Expectations' `expect_column_values_to_be_of_type` wants it."""
        return type(self.spark()).__name__


def _spark_types() -> dict:
    # pyspark is imported on first use so the trainer (GPU machine: no pyspark) can use schemas.
    from pyspark.sql import types as T

    return {
        Kind.STRING: T.StringType(),
        Kind.LONG: T.LongType(),
        Kind.INT: T.IntegerType(),
        Kind.DOUBLE: T.DoubleType(),
        Kind.FLOAT: T.FloatType(),
        Kind.TIMESTAMP: T.TimestampType(),
        Kind.DATE: T.DateType(),
        Kind.FLOAT_ARRAY: T.ArrayType(T.FloatType(), containsNull=False),
        Kind.LONG_ARRAY: T.ArrayType(T.LongType(), containsNull=False),
        Kind.INT_ARRAY: T.ArrayType(T.IntegerType(), containsNull=False),
    }


_ARROW = {
    Kind.STRING: pa.string(),
    Kind.LONG: pa.int64(),
    Kind.INT: pa.int32(),
    Kind.DOUBLE: pa.float64(),
    Kind.FLOAT: pa.float32(),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    Kind.DATE: pa.date32(),
    Kind.FLOAT_ARRAY: pa.list_(pa.float32()),
    Kind.LONG_ARRAY: pa.list_(pa.int64()),
    Kind.INT_ARRAY: pa.list_(pa.int32()),
}


@dataclass(frozen=True)
class Col:
    """One column of a grec table.

    Args:
        name: column name.
        kind: logical type.
        doc: what the column holds.
        nullable: whether null is allowed (checked row by row where the table has row rules).
        values: the closed set of allowed values, if any (e.g. labels: {0, 1}).
        min_value / max_value: inclusive bounds, if any (numbers, dates, timestamps as ISO strings).
        strict_min: the lower bound itself is not allowed (e.g. weights > 0).
    """

    name: str
    kind: Kind
    doc: str = ""
    nullable: bool = False
    values: Optional[Sequence[Any]] = None
    min_value: Any = None
    max_value: Any = None
    strict_min: bool = False
    meta: dict = field(default_factory=dict, compare=False)

    def spark_field(self) -> "T.StructField":
        from pyspark.sql import types as T

        return T.StructField(self.name, self.kind.spark(), self.nullable)

    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, self.kind.arrow(), self.nullable)
