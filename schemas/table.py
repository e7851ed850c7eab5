"""TableSchema: a lake table's columns, layout and the table-level expectations built from them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import types as T

from schemas.columns import Col


@dataclass(frozen=True)
class Expectation:
    """A data-quality rule in Great Expectations' vocabulary, kept free of the GX import.

    `kind` is the GX expectation class name (e.g. ``ExpectColumnValuesToNotBeNull``); `kwargs` its
    arguments. `etl/checks` turns these into a GX suite; the trainer side never needs GX.
    """

    kind: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.kind}({args})"


@dataclass(frozen=True)
class TableSchema:
    """One lake table.

    Args:
        name: `<layer>.<table>`, also its path under the lake root (`<lake>/<layer>/<table>`).
        columns: the columns, in storage order.
        doc: what one row is.
        partition_by: Delta partition columns: only a column of few values (a split, a run id);
            a partition per day makes the file count follow the span of the data.
        cluster_by: columns each file's rows are range-ordered by, so that Delta's per-file
            min/max statistics skip files on predicates over them (etl.write_layout).
        key: columns that identify a row (uniqueness is checked when `unique_key`).
        unique_key: whether `key` must be unique.
        extra: table-level expectations beyond those derived from the columns.
    """

    name: str
    columns: Sequence[Col]
    doc: str = ""
    partition_by: Sequence[str] = ()
    cluster_by: Sequence[str] = ()
    key: Sequence[str] = ()
    unique_key: bool = False
    extra: Sequence[Expectation] = ()

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def col(self, name: str) -> Col:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}; columns: {self.names}")

    def spark_schema(self) -> "T.StructType":
        from pyspark.sql import types as T

        return T.StructType([c.spark_field() for c in self.columns])

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([c.arrow_field() for c in self.columns])

    def expectations(self, key_rule: bool = True) -> list[Expectation]:
        """Table-level rules: exact column set, types, nulls, value sets, bounds, key uniqueness.

        `key_rule=False` leaves the key's uniqueness out, for a stage that proves it with its join
        rules instead (etl.checks.graph, etl.checks.neighbors): a distinct count over 12M edge keys
        is a shuffle that costs more than the rest of their checks."""
        out = [
            Expectation("ExpectTableColumnsToMatchSet", {"column_set": self.names, "exact_match": True}),
            Expectation("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        ]
        for c in self.columns:
            out.append(Expectation("ExpectColumnValuesToBeOfType", {"column": c.name, "type_": c.kind.gx_type}))
            if not c.nullable:
                out.append(Expectation("ExpectColumnValuesToNotBeNull", {"column": c.name}))
            if c.values is not None:
                out.append(Expectation("ExpectColumnValuesToBeInSet", {"column": c.name, "value_set": list(c.values)}))
            if c.min_value is not None or c.max_value is not None:
                out.append(Expectation("ExpectColumnValuesToBeBetween", {
                    "column": c.name, "min_value": c.min_value, "max_value": c.max_value,
                    "strict_min": c.strict_min}))
        if key_rule and self.unique_key and self.key:
            out.append(Expectation("ExpectCompoundColumnsToBeUnique", {"column_list": list(self.key)})
                       if len(self.key) > 1 else
                       Expectation("ExpectColumnValuesToBeUnique", {"column": self.key[0]}))
        out.extend(self.extra)
        return out
