"""Rules of gold.examples (etl.checks.rules).
"""
from __future__ import annotations

from datetime import date
from typing import Optional, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etl.checks.rules import rows_rule
from etl.transforms.graph import NodeType
from etl.transforms.split import SplitCutoffs
from schemas import Expectation
from schemas.split import EVAL, TRAIN, VAL
from schemas.tables import PAD_TYPE, examples


def example_rules(labels: Sequence[str], k: int, cutoffs: SplitCutoffs, n_domains: int,
                  n_impressions: Optional[int] = None, neighbor_arrays: bool = False) -> list[Expectation]:
    """Rules of gold.examples in the given layout: the neighbour-array rules (and the schema's rules
    on the array and feature columns) only when the rows carry them."""
    val_day, eval_day = ((d - date(1970, 1, 1)).days for d in (cutoffs.val_start, cutoffs.eval_start))
    rules = [*examples(labels, neighbor_arrays).expectations(),
             rows_rule(f"split = {TRAIN} before day {val_day} ({cutoffs.val_start}), {VAL} before day {eval_day} "
                       f"({cutoffs.eval_start}), {EVAL} from it on",
                       f"split != CASE WHEN day < {val_day} THEN '{TRAIN}' WHEN day < {eval_day} THEN '{VAL}' "
                       f"ELSE '{EVAL}' END"),
             rows_rule(f"domain_id in 0..{n_domains - 1}", f"domain_id >= {n_domains}")]
    for side in ("user", "item") if neighbor_arrays else ():
        rules += [
            rows_rule(f"{side} arrays of length {k}",
                      f"size({side}_nbr_ids) != {k} OR size({side}_nbr_weights) != {k} OR size({side}_nbr_types) != {k}"),
            rows_rule(f"{side}_nbr_count = min({k}, {side}_degree)", f"{side}_nbr_count != least({k}, {side}_degree)"),
            rows_rule(f"{side} padding after {side}_nbr_count",
                      f"exists(slice({side}_nbr_types, {side}_nbr_count + 1, {k}), t -> t != {PAD_TYPE}) "
                      f"OR exists(slice({side}_nbr_types, 1, {side}_nbr_count), t -> t = {PAD_TYPE})"),
        ]
    if n_impressions is not None:
        rules.append(Expectation("ExpectTableRowCountToEqual", {"value": n_impressions}))
    return rules


def example_violations(examples_df: DataFrame, nodes: DataFrame) -> dict[str, DataFrame]:
    def typed(t: NodeType, col: str) -> DataFrame:
        return nodes.where(F.col("node_type") == t.value).select(F.col("node_id").alias(col))

    return {
        "examples whose user_node is not a user node": examples_df.join(typed(NodeType.USER, "user_node"),
                                                                        "user_node", "left_anti"),
        "examples whose item_node is not an item node": examples_df.join(typed(NodeType.ITEM, "item_node"),
                                                                         "item_node", "left_anti"),
    }
