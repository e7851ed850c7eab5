"""Ingest stage: a source (MovieLens-100K, KuaiRand, contract files, synthetic) -> bronze Delta.

    spark-submit etl/jobs/ingest.py --lake lake --source movielens-100k
    grec etl ingest --lake lake --source contract --interactions logs.csv --labels click,like

Rows breaking a row-level rule go to quarantine.interactions with the reason; when more than
--max-quarantine-fraction of the rows do, or a table-level rule fails, nothing is written.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Optional

from pyspark.sql import SparkSession

from etl.checks.ingest import fixed_width
from etl.checks.report import ExpectationOutcome
from etl.jobs.shell import InputError, add_common_arguments, job_main
from etl.lake import Lake, StageRecord
from etl.session import get_spark
from etl.sources import SourceData, add_source_arguments, load_source_from_args
from etl.stage import Stage
from etl.transforms.ingest import (IngestRules, complete_items, complete_users, flag_rows, good_rows,
                                   mark_duplicates, quarantine_rows, rule_counts)
from schemas import contract
from schemas.params import add_param_arguments, check_bounds, param, params_from_args
from schemas.tables import ITEMS, QUARANTINE, USERS

STAGE = "ingest"


@dataclass(frozen=True)
class IngestConfig:
    """Ingest thresholds.

    Args:
        max_quarantine_fraction: the stage fails when more than this share of rows is rejected.
        max_ts: latest plausible event time (ISO, UTC); default: now + 1 day.
    """

    max_quarantine_fraction: float = param(0.001, "fail when more than this share of rows breaks a row-level rule",
                                           at_least=0, at_most=1)
    max_ts: Optional[str] = param(None, "latest plausible event time, ISO UTC (None: now + 1 day)")

    def __post_init__(self) -> None:
        check_bounds(self)


def ingest(spark: SparkSession, lake: Lake, run_id: str, src: SourceData,
           config: IngestConfig = IngestConfig()) -> StageRecord:
    """Run the ingest stage for `src`; returns the manifest record (raises StageFailed on bad data)."""
    rules = IngestRules(src.labels, src.numeric, src.ts_unit,
                        **({"max_ts": config.max_ts} if config.max_ts else {}))
    stage_config = {"source": src.name, "labels": list(src.labels), "positive_label": src.positive_label,
                    "numeric": list(src.numeric), "ts_unit": src.ts_unit.value, **asdict(config),
                    "max_ts": rules.max_ts}
    with Stage(spark, lake, run_id, STAGE, stage_config) as st:
        st.note("source", src.description)
        try:
            flagged = flag_rows(src.interactions, rules)
        except ValueError as e:
            raise InputError(f"{src.name} interactions ({src.description}): {e}") from None
        flagged = st.persist(mark_duplicates(flagged, rules.labels))
        total = flagged.count()
        by_rule = {r["rule"]: (r["rows"], list(r["samples"])) for r in rule_counts(flagged).collect()}
        bad = sum(n for n, _ in by_rule.values())
        st.note("rows_read", total)
        st.note("rows_quarantined_by_rule", {k: n for k, (n, _) in by_rule.items()})
        st.add_outcome(ExpectationOutcome(
            table="input", expectation=f"rows read from {src.name} > 0", success=total > 0, observed=total,
            error=None if total else f"no rows in the input ({src.description})"))
        frac = bad / total if total else 0.0
        st.add_outcome(ExpectationOutcome(
            table=QUARANTINE.name,
            expectation=f"quarantined share <= {config.max_quarantine_fraction:g} (row-level rules)",
            success=frac <= config.max_quarantine_fraction, observed=round(frac, 6), unexpected_count=bad,
            unexpected_percent=100 * frac, sample=[s for _, ss in by_rule.values() for s in ss][:10]))

        good = st.check(good_rows(flagged, rules), rules.schema.expectations(), rules.schema, cache=False)
        users = st.check(complete_users(src.users, good), [*USERS.expectations(), fixed_width(USERS)], USERS)
        items = st.check(complete_items(src.items, good), [*ITEMS.expectations(), fixed_width(ITEMS)], ITEMS)
        st.commit(good, rules.schema, properties={
            contract.LABELS.key: ",".join(src.labels), contract.POSITIVE_LABEL.key: src.positive_label,
            contract.NUMERIC.key: ",".join(src.numeric), contract.SOURCE.key: src.name})
        st.commit(users, USERS, properties={contract.FEATURE_NAMES.key: ",".join(src.user_feature_names)})
        st.commit(items, ITEMS, properties={contract.FEATURE_NAMES.key: ",".join(src.item_feature_names)})
        st.commit(quarantine_rows(flagged, run_id), QUARANTINE, replace_where=f"run_id = '{run_id}'")
    return st.record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_source_arguments(parser)
    add_param_arguments(parser.add_argument_group("ingest"), IngestConfig)


def run(args: argparse.Namespace) -> int:
    config = params_from_args(IngestConfig, args)
    spark = get_spark("grec-ingest")
    src = load_source_from_args(spark, args)
    ingest(spark, Lake(args.lake), args.run_id, src, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
