"""`kuairand` source: KuaiRand's public CSV layout (KuaiRand-Pure / -1K / -27K) mapped onto the
input contract (docs/method.md §Contract).

Log files (`log_standard_*.csv` by default) hold one row per real impression: item_id = video_id,
ts = time_ms (epoch ms, UTC; the files' own date/hourmin columns are Beijing time and are not used),
domain = "tab_<tab>", labels click = is_click, long_view, like = is_like, follow = is_follow
(positive label: click), numeric play_time_ms and duration_ms where the files have them. Values
stay strings as read; ingest casts and quarantines.

Optional side files: `user_features*.csv` (activity flags, log1p of the social counts, the
user_active_degree one-hot) and `video_features_basic*.csv` (ad flag, log1p duration in seconds,
height/width ratio, a missing-row flag). Missing or unparsable feature values become 0. The
`onehot_feat*` and `*_range` columns are categorical codes that a float array cannot carry
faithfully, so they are left out. An item's domain is its most frequent tab in the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from etl.sources.base import (DOMAIN, FEATURES_COL, ITEM_ID, SOURCE_COL, TS, USER_ID, SourceData,
                              SourceError, TsUnit, features_array, item_domains, matching_files, one_hot,
                              option, source_file)
from etl.sources.contract import require_columns
from schemas.layout import to_uri

NAME = "kuairand"
# contract label -> KuaiRand log column
LABELS = {"click": "is_click", "long_view": "long_view", "like": "is_like", "follow": "is_follow"}
POSITIVE_LABEL = "click"
NUMERIC = ("play_time_ms", "duration_ms")
LOG_COLUMNS = ("user_id", "video_id", "time_ms", "tab", *LABELS.values())

ACTIVE_DEGREES = ("high_active", "full_active", "middle_active", "UNKNOWN")
USER_FLAGS = ("is_lowactive_period", "is_live_streamer", "is_video_author")
USER_COUNTS = ("follow_user_num", "fans_user_num", "friend_user_num", "register_days")
USER_FEATURES = [*USER_FLAGS, *(f"log1p_{c}" for c in USER_COUNTS),
                 *(f"active_degree_{d.lower()}" for d in ACTIVE_DEGREES)]
ITEM_FEATURES = ["is_ad", "log1p_duration_s", "height_width_ratio", "video_features_missing"]


@dataclass(frozen=True)
class KuaiRandOptions:
    data_dir: Optional[str] = option(None, "--data-dir", "KuaiRand data folder (its data/ directory)")
    log_glob: str = option("log_standard_*.csv", "--log-glob",
                           "log file names to read, a glob inside --data-dir (log_*.csv adds the random-exposure logs)")


def _num(name: str) -> Column:
    return F.col(name).try_cast("double")


def interactions_table(log: DataFrame) -> DataFrame:
    numeric = [c for c in NUMERIC if c in log.columns]
    return log.select(
        F.col("user_id").alias(USER_ID), F.col("video_id").alias(ITEM_ID), F.col("time_ms").alias(TS),
        F.concat(F.lit("tab_"), F.col("tab")).alias(DOMAIN),
        *(F.col(src).alias(label) for label, src in LABELS.items()),
        *numeric, SOURCE_COL)


def users_table(raw: DataFrame) -> DataFrame:
    values = [*(_num(c) for c in USER_FLAGS), *(F.log1p(F.greatest(_num(c), F.lit(0.0))) for c in USER_COUNTS),
              *one_hot(F.col("user_active_degree"), ACTIVE_DEGREES)]
    return raw.select(F.col("user_id").alias(USER_ID), features_array(values).alias(FEATURES_COL))


def items_table(domains: DataFrame, videos: DataFrame) -> DataFrame:
    """Items of the log, with their most frequent tab and the basic video features where known."""
    v = videos.select(F.col("video_id").alias(ITEM_ID), "video_type", "video_duration", "server_width",
                      "server_height", F.lit(0.0).alias("_missing"))
    width = _num("server_width")
    values = [F.when(F.col("video_type") == "AD", 1.0).otherwise(0.0),
              F.log1p(F.greatest(_num("video_duration"), F.lit(0.0)) / 1000.0),
              F.when(width > 0, _num("server_height") / width),
              F.coalesce(F.col("_missing"), F.lit(1.0))]
    return (domains.join(v.dropDuplicates([ITEM_ID]), ITEM_ID, "left")
            .select(ITEM_ID, DOMAIN, features_array(values).alias(FEATURES_COL)))


def _read_csv(spark: SparkSession, pattern: str) -> Optional[DataFrame]:
    if not matching_files(spark, pattern):
        return None
    return spark.read.option("header", True).csv(to_uri(pattern)).withColumn(SOURCE_COL, source_file())


def load(spark: SparkSession, opts: KuaiRandOptions) -> SourceData:
    if not opts.data_dir:
        raise SourceError("source kuairand needs --data-dir (the folder holding KuaiRand's log_*.csv files)")
    root = opts.data_dir.rstrip("/")
    log = _read_csv(spark, f"{root}/{opts.log_glob}")
    if log is None:
        raise SourceError(f"kuairand: no log file matches {root}/{opts.log_glob}")
    require_columns(log, LOG_COLUMNS, f"{root}/{opts.log_glob}", "KuaiRand log")
    interactions = interactions_table(log)

    users = items = None
    raw_users = _read_csv(spark, f"{root}/user_features*.csv")
    if raw_users is not None:
        require_columns(raw_users, ["user_id", "user_active_degree", *USER_FLAGS, *USER_COUNTS],
                        f"{root}/user_features*.csv", "KuaiRand user features")
        users = users_table(raw_users)
    videos = _read_csv(spark, f"{root}/video_features_basic*.csv")
    if videos is not None:
        require_columns(videos, ["video_id", "video_type", "video_duration", "server_width", "server_height"],
                        f"{root}/video_features_basic*.csv", "KuaiRand video features")
        items = items_table(item_domains(interactions), videos)
    numeric = [c for c in NUMERIC if c in interactions.columns]
    return SourceData(
        name=NAME, description=f"KuaiRand-format logs {root}/{opts.log_glob}", interactions=interactions,
        labels=list(LABELS), positive_label=POSITIVE_LABEL, numeric=numeric, ts_unit=TsUnit.MILLIS,
        users=users, items=items, user_feature_names=list(USER_FEATURES) if users is not None else [],
        item_feature_names=list(ITEM_FEATURES) if items is not None else [])
