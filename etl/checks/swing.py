"""Rules of silver.swing_i2i (etl.checks.rules)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etl.checks.rules import rows_rule
from etl.transforms.swing import SwingParams
from schemas import Expectation
from schemas.tables import SWING_I2I


def swing_rules(params: SwingParams) -> list[Expectation]:
    """silver.swing_i2i: the schema's column rules plus finite scores, no self pairs, rank <= top_k."""
    rules = [*SWING_I2I.expectations(),
             rows_rule("scores are finite", "isnan(score) OR score = CAST('Infinity' AS DOUBLE)"),
             rows_rule("no self pairs", "item_id = neighbor_id")]
    if params.top_k is not None:
        rules.append(rows_rule(f"rank <= top_k = {params.top_k}", f"`rank` > {params.top_k}"))
    return rules


def swing_violations(out: DataFrame, items: DataFrame, params: SwingParams) -> dict[str, DataFrame]:
    """Key checks as joins: both ids exist in bronze.items; symmetry when no cap can cut a pair."""
    known = items.select("item_id")
    bad = {"item_id and neighbor_id exist in bronze.items": out.join(known, "item_id", "left_anti").unionByName(
        out.join(known.withColumnRenamed("item_id", "neighbor_id"), "neighbor_id", "left_anti"))}
    if params.caps_off:
        mirror = out.select(F.col("neighbor_id").alias("item_id"), F.col("item_id").alias("neighbor_id"), "score")
        bad["symmetric: s(i,j) = s(j,i)"] = out.join(mirror, ["item_id", "neighbor_id", "score"], "left_anti")
    return bad
