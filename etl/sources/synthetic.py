"""`synthetic` source: a deterministic generator with KuaiRand-mapped data's schema and planted structure.

Everything is generated inside Spark from seeded hashes (xxhash64 of seed, stream, keys), so a
seed gives the same rows on any cluster and partitioning, and 10M+ rows need no driver loop.

Planted structure (the model the tests check against):
- users u = 0..U-1: latent factors p_u ~ U(-√3, √3)^dim (unit variance), bias ~ N(0, bias_std²),
  Pareto activity a_u = min((1 - v)^(-1/activity_alpha), max_activity) with v ~ U(0,1) (passive:
  v < 0.5, regular: v < 0.9, active: the rest), a preferred domain floor(D·w²) with w ~ U(0,1)
  (skewed towards d0, so domains differ in size), and a preference strength in [pref_min, pref_max];
- items i = 0..I-1: domain d = i mod D, within-domain popularity rank m = i div D, factors q_i and
  bias drawn as the users';
- rows: user u gets 1 + its share (∝ a_u) of the remaining rows, exactly `rows` in all; each row
  picks the preferred domain with the user's preference strength (else a uniform domain), then an
  item of that domain by Zipf(zipf_exponent) over its ranks (continuous inverse CDF), a uniform day
  of `days` and a uniform second of the day;
- labels, with x = factor_scale·<p_u, q_i>/sqrt(dim) + b_u + b_i:
  click ~ Bern(σ(x + click_bias)); long_view ~ Bern(σ(x + long_view_bias - 3·(1 - click)));
  like ~ Bern(σ(x + like_bias - 5·(1 - click))): long views and likes follow clicks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from enum import IntEnum
from typing import Optional, Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from etl.sources.base import (DOMAIN, FEATURES_COL, ITEM_ID, SOURCE_COL, TS, USER_ID, SourceData,
                              SourceError, TsUnit, features_array, one_hot, option)
from etl.sources.contract import FileFormat
from schemas.layout import to_uri

NAME = "synthetic"
LABELS = ["click", "long_view", "like"]
POSITIVE_LABEL = "click"
ACTIVITY_CLASSES = ("passive", "regular", "active")
_CLASS_EDGES = (0.5, 0.9)  # activity quantiles where regular and active users start
N_PROJECTIONS = 4  # noisy latent-factor projections exposed as side features
_WEIGHT_RESOLUTION = 1000  # activity weights become integers, so their prefix sums are exact
_BLOCK = 4096  # users per block of the two-level prefix sum
_MASK53 = (1 << 53) - 1
# default users and items per row: the 1M-row defaults of 20,000 users and 5,000 items as ratios
ROWS_PER_USER = 50
ROWS_PER_ITEM = 200


class Stream(IntEnum):
    """Independent random streams: each hashes (seed, stream, keys...)."""

    ACTIVITY = 1
    PREF_DOMAIN = 2
    PREF_STRENGTH = 3
    USER_FACTOR = 4
    USER_BIAS = 5
    USER_NOISE = 6
    ITEM_FACTOR = 7
    ITEM_BIAS = 8
    ITEM_NOISE = 9
    ROW_PREFERRED = 10
    ROW_DOMAIN = 11
    ROW_RANK = 12
    ROW_DAY = 13
    ROW_SECOND = 14
    CLICK = 15
    LONG_VIEW = 16
    LIKE = 17


@dataclass(frozen=True)
class SyntheticOptions:
    rows: int = option(1_000_000, "--rows", "number of interaction rows (exact)", int)
    users: Optional[int] = option(None, "--users", f"number of users, each with at least one row "
                                  f"(default rows / {ROWS_PER_USER}: 20,000 at 1M rows)", int)
    items: Optional[int] = option(None, "--items", f"number of items (default rows / {ROWS_PER_ITEM}, at least "
                                  f"--domains: 5,000 at 1M rows)", int)
    domains: int = option(4, "--domains", "number of domains d0..d{D-1}", int)
    days: int = option(30, "--days", "number of days of events", int)
    seed: int = option(0, "--seed", "random seed; the same seed gives the same rows", int)
    start_date: str = option("2024-01-01", "--start-date", "first day (UTC, ISO date)")
    partitions: Optional[int] = option(None, "--partitions",
                                       "Spark partitions of the rows (default: max(4, rows / 1M))", int)
    latent_dim: int = option(8, None, "dimension of the latent factors")
    factor_scale: float = option(2.0, None, "weight of <p_u, q_i>/sqrt(dim) in the label logits")
    bias_std: float = option(0.3, None, "std of the user and item logit biases")
    click_bias: float = option(-1.0, None, "click logit offset")
    long_view_bias: float = option(0.0, None, "long_view logit offset (given a click)")
    like_bias: float = option(-2.0, None, "like logit offset (given a click)")
    zipf_exponent: float = option(1.1, None, "Zipf exponent of item popularity within a domain")
    activity_alpha: float = option(1.5, None, "Pareto tail index of user activity (smaller: heavier tail)")
    max_activity: float = option(1000.0, None, "cap of a user's activity relative to the least active")
    pref_min: float = option(0.5, None, "lowest probability that a row is in the user's preferred domain")
    pref_max: float = option(0.9, None, "highest such probability")
    feature_noise: float = option(0.5, None, "std of the noise on the side-feature latent projections")

    def __post_init__(self) -> None:
        # defaults scale with rows, so a small --rows still gives users several rows each (a fixed
        # 20,000 users at 20,000 rows left each user one row and Swing no pair of positives)
        if self.users is None:
            object.__setattr__(self, "users", max(1, self.rows // ROWS_PER_USER))
        if self.items is None:
            object.__setattr__(self, "items", max(self.domains, self.rows // ROWS_PER_ITEM))

    @property
    def n_users(self) -> int:
        """`users`, which __post_init__ has resolved."""
        assert self.users is not None
        return self.users

    @property
    def n_items(self) -> int:
        """`items`, which __post_init__ has resolved."""
        assert self.items is not None
        return self.items

    def validate(self) -> None:
        checks = [(self.n_users >= 1, "users >= 1"), (self.n_items >= 1, "items >= 1"),
                  (self.domains >= 1, "domains >= 1"), (self.days >= 1, "days >= 1"),
                  (self.rows >= self.n_users, f"rows >= users (every user gets a row; users={self.users})"),
                  (self.n_items >= self.domains,
                   f"items >= domains (every domain gets an item; domains={self.domains})"),
                  (self.latent_dim >= N_PROJECTIONS, f"latent_dim >= {N_PROJECTIONS}"),
                  (self.zipf_exponent > 0 and self.zipf_exponent != 1, "zipf_exponent > 0 and != 1"),
                  (self.activity_alpha > 0, "activity_alpha > 0"), (self.max_activity >= 1, "max_activity >= 1"),
                  (0 <= self.pref_min <= self.pref_max <= 1, "0 <= pref_min <= pref_max <= 1")]
        bad = [what for ok, what in checks if not ok]
        try:
            date.fromisoformat(self.start_date)
        except ValueError:
            bad.append(f"start_date is an ISO date (got {self.start_date!r})")
        if bad:
            raise SourceError(f"synthetic options break: {bad}")

    def n_partitions(self) -> int:
        return self.partitions or max(4, math.ceil(self.rows / 1_000_000))


# ---- seeded randomness as Spark expressions --------------------------------------------------------

def uniform(seed: int, stream: Stream, *keys: Column) -> Column:
    """U(0,1), never 0 or 1: 53 bits of xxhash64(seed, stream, keys)."""
    h = F.xxhash64(F.lit(seed).cast("long"), F.lit(int(stream)), *keys)
    return (h.bitwiseAND(F.lit(_MASK53)).cast("double") + 0.5) / float(1 << 53)


def normal(seed: int, stream: Stream, *keys: Column) -> Column:
    """N(0,1) by Box-Muller from two uniforms of the stream."""
    u1, u2 = uniform(seed, stream, *keys, F.lit(0)), uniform(seed, stream, *keys, F.lit(1))
    return F.sqrt(-2.0 * F.log(u1)) * F.cos(2.0 * math.pi * u2)


def factors(seed: int, stream: Stream, key: Column, dim: int) -> list[Column]:
    """`dim` independent U(-√3, √3) values (mean 0, variance 1): one hash each, no transcendental
    function, which matters because every row computes its item's factors."""
    return [math.sqrt(3.0) * (2.0 * uniform(seed, stream, key, F.lit(k)) - 1.0) for k in range(dim)]


def sigmoid(x: Column) -> Column:
    return 1.0 / (1.0 + F.exp(-x))


def bernoulli(p: Column, seed: int, stream: Stream, *keys: Column) -> Column:
    return (uniform(seed, stream, *keys) < p).cast("int")


# ---- the latent model: users and items ---------------------------------------------------------------

def user_model(spark: SparkSession, opts: SyntheticOptions) -> DataFrame:
    """u, activity, activity_class, pref_domain, pref_strength, factors, bias: the planted user side."""
    s, u = opts.seed, F.col("u")
    v = uniform(s, Stream.ACTIVITY, u)
    activity = F.least(F.pow(1.0 - v, -1.0 / opts.activity_alpha), F.lit(opts.max_activity))
    klass = F.when(v < _CLASS_EDGES[0], ACTIVITY_CLASSES[0]).when(v < _CLASS_EDGES[1], ACTIVITY_CLASSES[1]) \
        .otherwise(ACTIVITY_CLASSES[2])
    pref = F.floor(opts.domains * F.pow(uniform(s, Stream.PREF_DOMAIN, u), 2.0)).cast("int")
    strength = opts.pref_min + (opts.pref_max - opts.pref_min) * uniform(s, Stream.PREF_STRENGTH, u)
    return spark.range(opts.n_users).withColumnRenamed("id", "u").select(
        "u", activity.alias("activity"), klass.alias("activity_class"), pref.alias("pref_domain"),
        strength.alias("pref_strength"),
        F.array(*factors(s, Stream.USER_FACTOR, u, opts.latent_dim)).alias("factors"),
        (opts.bias_std * normal(s, Stream.USER_BIAS, u)).alias("bias"))


def item_latent(opts: SyntheticOptions, i: Column) -> tuple[list[Column], Column]:
    """Item i's factors and bias; rows compute them from i on the fly, so no join is needed."""
    bias = opts.bias_std * normal(opts.seed, Stream.ITEM_BIAS, i)
    return factors(opts.seed, Stream.ITEM_FACTOR, i, opts.latent_dim), bias


def item_model(spark: SparkSession, opts: SyntheticOptions) -> DataFrame:
    """i, domain_index, rank, factors, bias: the planted item side."""
    i = F.col("i")
    q, bias = item_latent(opts, i)
    return spark.range(opts.n_items).withColumnRenamed("id", "i").select(
        "i", (i % opts.domains).cast("int").alias("domain_index"), F.floor(i / opts.domains).alias("rank"),
        F.array(*q).alias("factors"), bias.alias("bias"))


def _row_counts(users: DataFrame, opts: SyntheticOptions) -> DataFrame:
    """users + n_rows: 1 each plus a share ∝ activity of the rest, summing to exactly opts.rows.

    n_u = 1 + floor(E·C_u / W) - floor(E·C_{u-1} / W), E = rows - users, C the prefix sums of
    integer weights (so exact, and the same on any partitioning), W their total. The prefix sum is
    two-level so no step gathers all users in one task: block offsets from a join of the few block
    sums, then a cumulative sum within each block.
    """
    w = users.withColumn("w", F.round(F.col("activity") * _WEIGHT_RESOLUTION).cast("long")) \
        .withColumn("block", F.floor(F.col("u") / _BLOCK))
    sums = w.groupBy("block").agg(F.sum("w").alias("block_w"))
    before = (sums.alias("a").join(sums.alias("b"), F.col("b.block") < F.col("a.block"), "left")
              .groupBy(F.col("a.block").alias("block"))
              .agg(F.coalesce(F.sum("b.block_w"), F.lit(0)).alias("offset")))
    blocks = F.broadcast(before.crossJoin(sums.agg(F.sum("block_w").cast("decimal(38,0)").alias("total"))))
    within = Window.partitionBy("block").orderBy("u").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    w = w.join(blocks, "block").withColumn("cum", (F.col("offset") + F.sum("w").over(within)).cast("decimal(38,0)"))

    def rows_before(cum: str) -> Column:  # exact integer division; decimals keep E·C exact past 2^63
        return F.expr(f"(CAST({opts.rows - opts.n_users} AS DECIMAL(38,0)) * {cum}) div total")
    return (w.withColumn("cum_before", F.col("cum") - F.col("w"))
            .withColumn("n_rows", (1 + rows_before("cum") - rows_before("cum_before")).cast("long"))
            .drop("w", "block", "offset", "total", "cum", "cum_before"))


def _zipf_rank(r: Column, n: Column, exponent: float) -> Column:
    """0-based rank in [0, n) with P(rank) ∝ (rank + 1)^-exponent (continuous inverse CDF)."""
    a = 1.0 - exponent
    k = F.pow(1.0 + r * (F.pow(n + 1.0, a) - 1.0), 1.0 / a)
    return F.least(F.floor(k) - 1, n - 1).cast("long")


def interactions_table(spark: SparkSession, opts: SyntheticOptions) -> DataFrame:
    """user_id, item_id, ts, domain, click, long_view, like, _source."""
    opts.validate()
    s, D = opts.seed, opts.domains
    users = _row_counts(user_model(spark, opts), opts).repartition(opts.n_partitions(), "u")
    row_index = F.explode(F.sequence(F.lit(0), (F.col("n_rows") - 1).cast("int"))).alias("j")
    rows = users.select("u", "pref_domain", "pref_strength", F.col("factors").alias("p"), F.col("bias").alias("bu"),
                        row_index)
    u, j = F.col("u"), F.col("j")
    any_domain = F.floor(D * uniform(s, Stream.ROW_DOMAIN, u, j)).cast("int")
    d = F.when(uniform(s, Stream.ROW_PREFERRED, u, j) < F.col("pref_strength"), F.col("pref_domain")) \
        .otherwise(any_domain)
    rows = rows.withColumn("d", d).withColumn("n_d", F.floor((opts.n_items - 1 - F.col("d")) / D) + 1)
    rank = _zipf_rank(uniform(s, Stream.ROW_RANK, u, j), F.col("n_d"), opts.zipf_exponent)
    rows = rows.withColumn("i", rank * D + F.col("d"))
    i = F.col("i")
    q, bi = item_latent(opts, i)
    dot = sum((F.col("p")[k] * q[k] for k in range(opts.latent_dim)), F.lit(0.0))
    x = opts.factor_scale * dot / math.sqrt(opts.latent_dim) + F.col("bu") + bi
    rows = rows.withColumn("x", x)
    x, miss = F.col("x"), 1 - F.col("click")
    rows = rows.withColumn("click", bernoulli(sigmoid(x + opts.click_bias), s, Stream.CLICK, u, j))
    start = int(datetime.combine(date.fromisoformat(opts.start_date), datetime.min.time(), timezone.utc).timestamp())
    day = F.floor(opts.days * uniform(s, Stream.ROW_DAY, u, j))
    second = F.floor(86400 * uniform(s, Stream.ROW_SECOND, u, j))
    return rows.select(
        u.cast("string").alias(USER_ID), i.cast("string").alias(ITEM_ID),
        F.timestamp_seconds(F.lit(start) + day * 86400 + second).alias(TS),
        F.concat(F.lit("d"), F.col("d").cast("string")).alias(DOMAIN),
        F.col("click"),
        bernoulli(sigmoid(x + opts.long_view_bias - 3.0 * miss), s, Stream.LONG_VIEW, u, j).alias("long_view"),
        bernoulli(sigmoid(x + opts.like_bias - 5.0 * miss), s, Stream.LIKE, u, j).alias("like"),
        F.lit(f"synthetic(seed={s})").alias(SOURCE_COL))


# ---- side tables ---------------------------------------------------------------------------------------

USER_FEATURES = [*(f"activity_{c}" for c in ACTIVITY_CLASSES), *(f"latent_proj_{k}" for k in range(N_PROJECTIONS))]
ITEM_FEATURES = ["popularity_rank_scaled", *(f"latent_proj_{k}" for k in range(N_PROJECTIONS))]


def _noisy_projections(seed: int, stream: Stream, key: Column, noise: float) -> list[Column]:
    return [F.col("factors")[k] + noise * normal(seed, stream, key, F.lit(k)) for k in range(N_PROJECTIONS)]


def users_table(spark: SparkSession, opts: SyntheticOptions) -> DataFrame:
    """user_id, features: activity class one-hot and noisy projections of the latent factors."""
    m = user_model(spark, opts)
    values: Sequence[Column] = [*one_hot(F.col("activity_class"), ACTIVITY_CLASSES),
                                *_noisy_projections(opts.seed, Stream.USER_NOISE, F.col("u"), opts.feature_noise)]
    return m.select(F.col("u").cast("string").alias(USER_ID), features_array(values).alias(FEATURES_COL))


def items_table(spark: SparkSession, opts: SyntheticOptions) -> DataFrame:
    """item_id, domain, features: log-scaled popularity rank and noisy projections of the factors."""
    m = item_model(spark, opts)
    per_domain = math.ceil(opts.n_items / opts.domains)
    values = [F.log1p(F.col("rank")) / math.log1p(per_domain),
              *_noisy_projections(opts.seed, Stream.ITEM_NOISE, F.col("i"), opts.feature_noise)]
    return m.select(F.col("i").cast("string").alias(ITEM_ID),
                    F.concat(F.lit("d"), F.col("domain_index").cast("string")).alias(DOMAIN),
                    features_array(values).alias(FEATURES_COL))


def load(spark: SparkSession, opts: SyntheticOptions) -> SourceData:
    opts.validate()
    return SourceData(
        name=NAME,
        description=(f"synthetic (seed {opts.seed}): {opts.rows:,} rows, {opts.users:,} users, {opts.items:,} items, "
                     f"{opts.domains} domains, {opts.days} days from {opts.start_date}"),
        interactions=interactions_table(spark, opts), labels=list(LABELS), positive_label=POSITIVE_LABEL,
        numeric=[], ts_unit=TsUnit.TIMESTAMP, users=users_table(spark, opts), items=items_table(spark, opts),
        user_feature_names=list(USER_FEATURES), item_feature_names=list(ITEM_FEATURES))


# ---- contract files ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyntheticFiles:
    """Where `write_synthetic` put the contract files, and the ingest flags that read them back."""

    interactions: str
    users: str
    items: str
    fmt: FileFormat

    def ingest_args(self) -> list[str]:
        return ["--source", "contract", "--interactions", self.interactions, "--labels", ",".join(LABELS),
                "--positive-label", POSITIVE_LABEL, "--users", self.users, "--items", self.items,
                "--format", self.fmt.value]


def _feature_columns(df: DataFrame, key: Sequence[str], names: Sequence[str]) -> DataFrame:
    """The features array as one named column per slot (the contract's side-table layout)."""
    return df.select(*key, *(F.col(FEATURES_COL)[k].alias(n) for k, n in enumerate(names)))


def write_synthetic(spark: SparkSession, out_path: str, fmt: FileFormat | str = FileFormat.PARQUET,
                    mode: str = "error", **options) -> SyntheticFiles:
    """Generate the synthetic data and write it as contract files under `out_path`
    (`interactions/`, `users/`, `items/`); `options` are SyntheticOptions fields."""
    fmt = FileFormat(fmt)
    data = load(spark, SyntheticOptions(**options))
    assert data.users is not None and data.items is not None  # load() builds both side tables
    base = out_path.rstrip("/")
    files = SyntheticFiles(f"{base}/interactions", f"{base}/users", f"{base}/items", fmt)
    tables = [(data.interactions.drop(SOURCE_COL), files.interactions),
              (_feature_columns(data.users, [USER_ID], data.user_feature_names), files.users),
              (_feature_columns(data.items, [ITEM_ID, DOMAIN], data.item_feature_names), files.items)]
    for df, path in tables:
        writer = df.write.mode(mode).format(fmt.value)
        if fmt is FileFormat.CSV:
            writer = writer.option("header", True)
        writer.save(to_uri(path))
    return files
