"""Rules of gold.macro (etl.checks.rules).
"""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import DataFrame

from etl.checks.rules import rows_rule
from schemas import Expectation
from schemas.tables import macro, macro_counts_col


def macro_rules(labels: Sequence[str], n_domains: int, n_clusters: int) -> list[Expectation]:
    schema = macro(labels)
    rules = [*schema.expectations(),
             rows_rule(f"user macro_id < {n_clusters}, item macro_id < {n_domains}",
                       f"(node_type = 'user' AND macro_id >= {n_clusters}) OR "
                       f"(node_type = 'item' AND macro_id >= {n_domains})")]
    for c in (macro_counts_col(t).name for t in labels):
        rules += [
            rows_rule(f"{c}: length {n_domains} for users, {n_clusters} for items",
                      f"size({c}) != CASE node_type WHEN 'user' THEN {n_domains} ELSE {n_clusters} END"),
            rows_rule(f"{c}: counts >= 0", f"exists({c}, x -> isnan(x) OR x < 0)"),
        ]
    return rules


def macro_violations(macro_df: DataFrame, nodes: DataFrame) -> dict[str, DataFrame]:
    key = ["node_id", "node_type"]
    return {
        "nodes without a macro row of their type": nodes.select(*key).join(macro_df.select(*key), key, "left_anti"),
        "macro rows of unknown nodes": macro_df.select(*key).join(nodes.select(*key), key, "left_anti"),
    }
