"""Swing item–item weights (docs/method.md §Swing) as a pure DataFrame transform: exact, skew-safe.

Definition — what `swing` computes, and what the brute-force reference in tests/test_swing.py
recomputes independently:

1. P = the distinct (user, item) pairs of the input. Rows whose user or item is null are ignored (a
   positive with no user or no item links nothing).
2. I_u = the items of u in P. Users with |I_u| outside [min_user_items, max_user_items] are dropped.
3. Per-item sample: S_i = the `max_users_per_item` remaining users of item i with the smallest
   xxhash64(seed, item, user): Spark's `xxhash64` (seed 42) over the long `seed` and the item and
   user ids *as typed in the input*, so it is reproducible outside grec as
   ``F.xxhash64(F.lit(seed).cast("long"), item_col, user_col)``. A tie (a 64-bit hash collision
   within one item) is broken by (|I_u|, grec's internal user key). No cap (None) keeps every user.
4. w_u = (alpha1 + |I_u|) ^ (-beta_user), with |I_u| measured *before* the sample (step 2): the sample
   decides which users represent a popular item, not how active a user is.
5. C_uv = {k : u ∈ S_k and v ∈ S_k}, the common items *after* the sample, and
       s(i, j) = Σ over unordered {u, v} ⊂ S_i ∩ S_j, u ≠ v, of w_u w_v / (alpha2 + |C_uv|).
   Without a binding sample S_i = U_i and C_uv = I_u ∩ I_v: exactly the definition of docs/method.md §Swing. Measuring C_uv on the
   sampled graph keeps s symmetric with caps on and costs nothing (it is the group size of the
   user-pair step below); measuring it on the full graph would join every candidate pair with both
   users' full item lists.
6. n_common_users = |S_i ∩ S_j|. Item pairs with s = 0 (fewer than two common users) are absent.
   Both directions are stored; each item keeps its `top_k` neighbours by score descending, ties by
   neighbour id ascending (rank 1 = most similar). top_k None keeps all.

Algorithm (T1 = Σ_i C(|S_i|, 2) (user pair, common item) triples; T2 = Σ_uv C(|C_uv|, 2) (user pair,
item pair) contributions, the work any exact method does):

A. users and items get compact long keys below 2^31 (`etl.transforms.compact_keys`), so a user
   (with its |I_u|) or an item pair packs into one long and every heavy shuffle carries longs.
B. group by user: distinct items, |I_u|, the activity filter.                        (shuffle of P)
C. group by item: the sample S_i, as an array of packed users |I_u|·2^31 + u.        (shuffle of P)
D. T1: for each position of S_i, the head user u and the tail of users after it, hash-partitioned
   by u and gathered per u: each user pair travels once, as 8 bytes inside a tail, and a hot item's
   C(cap, 2) pairs spread over the partitions of its users instead of sitting in one task (no key of
   the heavy work is an item; the tails' partitions are not coalesced). S_i is sorted on the packed
   users, i.e. by (|I_u|, key), one global order, so every pair is oriented the same way in every
   item and the *less active* user leads it: a very active user leads only its pairs with even more
   active users, so no user's partition collects the pair work of a hub (degree ordering, as in
   triangle counting).                                         (shuffle of T1 ids, 8 bytes each)
E–G. per head user u, in the JVM (`grec.swing.HeadUserPairs`, etl/jvm; a Java UDF because Spark's
   row operators would box, copy and sort every triple): one primitive sort of u's triples groups
   them by partner v, giving C_uv; each pair with |C_uv| >= 2 adds c_uv = w_u w_v / (alpha2 + |C_uv|)
   (w from the packed |I|) to every item pair i < j of C_uv, summed per item pair over all of u's
   partners. Spark then sums those partial sums per item pair (packed i·2^31 + j) with map-side
   combine, and counts m = Σ contributing user pairs = C(n_common, 2).
H. mirror (s is computed once per unordered pair, so both directions are bit-identical), keep the
   top_k by rank(), decode ids, and number the rows with the id tie-break.

Scores are sums of doubles: their summation order depends on the partitioning, so runs on different
clusters can differ by an ulp.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any, Optional

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.session import SparkSetupError
from etl.transforms.compact_keys import compact_keys
from schemas.params import ParamError, check_bounds, param

OUTPUT_COLUMNS = ("item_id", "neighbor_id", "score", "n_common_users", "rank")


class SwingPreset(str, Enum):
    """Named parameter sets of public Swing implementations (their documented defaults)."""

    FLINK = "flink"
    """Flink ML `Swing`: alpha1 = 15, beta = 0.3, alpha2 = 0, minUserBehavior = 10,
    maxUserBehavior = 1000, maxUserNumPerItem = 1000, k = 100."""
    ALINK = "alink"
    """Alink / PAI `SwingTrainBatchOp`: user weight 1/(userAlpha + n)^userBeta with userAlpha = 5,
    userBeta = -0.35 (negative: active users weigh MORE), alpha = 1.0, minUserItems = 10,
    maxUserItems = 1000, maxItemNumber = 1000. Alink has no k at training; grec's top_k = 100 is kept."""
    PAPER = "paper"
    """The Swing paper (Yang et al. 2020): w_u = 1/sqrt(|I_u|), alpha = 1; grec's defaults otherwise."""


@dataclass(frozen=True)
class SwingParams:
    """Swing parameters (grec's defaults, docs/method.md §Swing). See the module docstring for the exact definition.

    Args:
        alpha1: user-weight offset: w_u = (alpha1 + |I_u|) ^ (-beta_user). Must be >= 0.
        beta_user: user-weight exponent; > 0 weighs active users less, < 0 (Alink) more.
        alpha2: pair smoothing in w_u w_v / (alpha2 + |C_uv|). Must be >= 0.
        min_user_items: users with fewer distinct positive items are dropped (>= 1).
        max_user_items: users with more are dropped (bots, crawlers); None = no upper bound.
        max_users_per_item: U_i is capped by a seeded uniform sample of this many users (>= 2);
            None = no cap.
        top_k: neighbours kept per item; None = all.
        seed: seed of the per-item user sample.
    """

    alpha1: float = param(15.0, "user-weight offset: w_u = (alpha1 + |I_u|)^-beta_user", at_least=0)
    beta_user: float = param(0.3, "user-weight exponent; < 0 weighs active users more (Alink)")
    alpha2: float = param(1.0, "pair smoothing: w_u w_v / (alpha2 + |C_uv|)", at_least=0)
    min_user_items: int = param(2, "drop users with fewer distinct positive items", at_least=1)
    max_user_items: Optional[int] = param(1000, "drop users with more distinct positive items (bots, crawlers)",
                                          at_least=1, none_word=True)
    max_users_per_item: Optional[int] = param(1000, "cap U_i by a seeded uniform sample of this many users",
                                              at_least=2, none_word=True)
    top_k: Optional[int] = param(100, "neighbours kept per item", at_least=1, none_word=True)
    seed: int = param(0, "seed of the per-item user sample", flag="swing-seed")

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.max_user_items is not None and self.max_user_items < self.min_user_items:
            raise ParamError("max_user_items", f"({self.max_user_items}) must be >= min_user_items "
                                               f"({self.min_user_items}) or None", "--max-user-items")

    @classmethod
    def preset(cls, name: SwingPreset | str, **overrides: Any) -> "SwingParams":
        """The preset's parameters, with `overrides` (e.g. seed, top_k) applied on top."""
        try:
            key = SwingPreset(name)
        except ValueError:
            raise ValueError(f"unknown Swing preset {name!r}; expected one of "
                             f"{[p.value for p in SwingPreset]}") from None
        return replace(_PRESETS[key], **overrides)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def caps_off(self) -> bool:
        """Neither the sample nor top_k is on: every stored (i, j) then has its (j, i).

        (Scores are symmetric in every case; with top_k, one of the two items may not keep the pair.)
        """
        return self.max_users_per_item is None and self.top_k is None


_PRESETS = {
    SwingPreset.FLINK: SwingParams(alpha1=15.0, beta_user=0.3, alpha2=0.0, min_user_items=10,
                                   max_user_items=1000, max_users_per_item=1000, top_k=100),
    SwingPreset.ALINK: SwingParams(alpha1=5.0, beta_user=-0.35, alpha2=1.0, min_user_items=10,
                                   max_user_items=1000, max_users_per_item=1000, top_k=100),
    SwingPreset.PAPER: SwingParams(alpha1=0.0, beta_user=0.5, alpha2=1.0),
}


def sample_key(seed: int, item: Column | str, user: Column | str) -> Column:
    """The per-item sample order of step 3: users with smaller keys are kept first."""
    return F.xxhash64(F.lit(int(seed)).cast("long"), item, user)


def swing_partitions(spark: SparkSession, positive_rows: int) -> int:
    """Partitions of Swing's heavy user-pair stage for an input of `positive_rows` rows: at least
    `spark.sql.shuffle.partitions`, and one per 40,000 positives, so each task's gathered tails and
    partial sums stay in memory (250 at 10^7; bench/swing.py measured this setting)."""
    return max(_shuffle_partitions(spark), positive_rows // ROWS_PER_PARTITION)


def _shuffle_partitions(spark: SparkSession) -> int:
    """spark.sql.shuffle.partitions, which always has a value (Spark's default: 200)."""
    value = spark.conf.get("spark.sql.shuffle.partitions")
    assert value is not None
    return int(value)


def swing(positives: DataFrame, params: SwingParams = SwingParams(), *,
          user_col: str = "user_id", item_col: str = "item_id", partitions: Optional[int] = None) -> DataFrame:
    """Swing similarities of the items in `positives` (one row per positive interaction).

    Returns rows (item_id, neighbor_id, score, n_common_users, rank) with item_id and neighbor_id
    of the input's item id type, score double, n_common_users long, rank int. An input with no user
    pair sharing two items (empty, one user, all users filtered out) gives an empty frame.

    The heavy user-pair stage runs on `partitions` partitions (default `spark.sql.shuffle.partitions`),
    which AQE does not coalesce (the stage's input is small, its work is not): give big inputs more,
    so that each task's gathered tails and partial sums fit in memory; `swing_partitions` sizes it
    from the input's row count (the jobs use it).
    It calls grec's Java UDF (etl/jvm, built into .grec/jars/grec-jvm.jar by `make setup`).

    Raises:
        ValueError: a column is missing (the message lists the columns found) or user_col == item_col.
        SparkSetupError: grec-jvm.jar is not on the session's classpath.
    """
    missing = [c for c in (user_col, item_col) if c not in positives.columns]
    if missing:
        raise ValueError(f"swing input has no column(s) {missing}; columns found: {positives.columns}")
    if user_col == item_col:
        raise ValueError(f"user_col and item_col are the same column {user_col!r}")
    if partitions is None:
        partitions = _shuffle_partitions(positives.sparkSession)
    elif partitions < 1:
        raise ValueError(f"partitions must be >= 1 (got {partitions})")

    raw = (positives.select(F.col(user_col).alias("user_raw"), F.col(item_col).alias("item_raw"))
           .where(F.col("user_raw").isNotNull() & F.col("item_raw").isNotNull())
           .withColumn("hs", sample_key(params.seed, "item_raw", "user_raw")))
    users = compact_keys(raw, "user_raw", "u")
    items = compact_keys(users.frame, "item_raw", "i")

    # B. users: distinct items (hs is a function of the pair, so the set dedups pairs), filter.
    by_user = (items.frame.groupBy("u").agg(F.collect_set(F.struct("i", "hs")).alias("its"))
               .withColumn("n_items", F.size("its")))
    in_range = F.col("n_items") >= params.min_user_items
    if params.max_user_items is not None:
        in_range &= F.col("n_items") <= params.max_user_items
    by_user = by_user.where(in_range)

    # C. items: the seeded sample S_i, as packed users sorted lightest first (see D).
    member = (by_user.select(_pack("n_items", "u").alias("p"), F.explode("its").alias("e"))
              .select(F.col("e.i").alias("i"), F.struct(F.col("e.hs").alias("hs"), "p").alias("s")))
    candidates = F.sort_array(F.collect_list("s"))
    if params.max_users_per_item is not None:
        candidates = F.slice(candidates, 1, params.max_users_per_item)
    by_item = (member.groupBy("i").agg(F.sort_array(F.transform(candidates, lambda s: s["p"])).alias("users"))
               .where(F.size("users") >= 2))

    # D. T1 shipped as tails, gathered per head user (the partitioning by head already clusters it).
    per_head = (_heads_and_tails(by_item, "users", "head", "tail").repartition(partitions, "head")
                .groupBy("head").agg(F.collect_list(F.struct("i", "tail")).alias("lists")))

    # E–G. partial sums per head user in the JVM, then one score per unordered item pair.
    partial = per_head.select(F.call_function(
        _register_head_user_pairs(positives.sparkSession), "head", "lists", F.lit(float(params.alpha1)),
        F.lit(float(params.beta_user)), F.lit(float(params.alpha2))).alias("r"))
    contributions = partial.select(F.inline(F.arrays_zip(
        F.col("r.pairs").alias("pair"), F.col("r.scores").alias("c"), F.col("r.users").alias("m"))))
    scored = (contributions.groupBy("pair").agg(F.sum("c").alias("score"), F.sum("m").alias("m"))
              .select(F.shiftright("pair", _PAIR_SHIFT).alias("i"), F.col("pair").bitwiseAND(_LOW_MASK).alias("j"),
                      "score",
                      F.round((F.lit(1.0) + F.sqrt(F.lit(1.0) + F.lit(8.0) * F.col("m"))) / 2)
                      .cast("long").alias("n_common_users")))

    # H. both directions, top_k, raw ids, final rank with the id tie-break.
    directions = F.array(F.struct(F.col("i").alias("a"), F.col("j").alias("b")),
                         F.struct(F.col("j").alias("a"), F.col("i").alias("b")))
    both = scored.select(F.explode(directions).alias("d"), "score", "n_common_users") \
        .select("d.*", "score", "n_common_users")
    if params.top_k is not None:
        # rank() gives ties the same rank, so every row of the final top_k survives this cut.
        both = (both.withColumn("r", F.rank().over(Window.partitionBy("a").orderBy(F.desc("score"))))
                .where(F.col("r") <= params.top_k).drop("r"))
    both = items.decode(items.decode(both, "a", "item_id"), "b", "neighbor_id")
    ranked = both.withColumn("rank", F.row_number().over(
        Window.partitionBy("item_id").orderBy(F.desc("score"), F.asc("neighbor_id"))).cast("int"))
    if params.top_k is not None:
        ranked = ranked.where(F.col("rank") <= params.top_k)
    return ranked.select(*OUTPUT_COLUMNS)


# Compact keys are below 2^31, so a key with a count below 2^32 (|I_u|), or two keys, pack into one
# non-negative long.
_PAIR_SHIFT = 31
_LOW_MASK = (1 << _PAIR_SHIFT) - 1
ROWS_PER_PARTITION = 40_000

HEAD_USER_PAIRS_CLASS = "grec.swing.HeadUserPairs"
_HEAD_USER_PAIRS_UDF = "grec_swing_head_user_pairs"
_HEAD_USER_PAIRS_RESULT = T.StructType([
    T.StructField("pairs", T.ArrayType(T.LongType(), False)),
    T.StructField("scores", T.ArrayType(T.DoubleType(), False)),
    T.StructField("users", T.ArrayType(T.LongType(), False)),
])


def explain_empty(positives: DataFrame, params: SwingParams = SwingParams(), *,
                  user_col: str = "user_id", item_col: str = "item_id") -> str:
    """Why `swing(positives, params)` is empty, in terms of its input (called only when it is).

    Swing scores items i, j by user pairs that both have i and j, so it needs two users kept by the
    activity filter (step 2) who share two items; the message says which of these is missing.
    """
    pairs = positives.where(F.col(user_col).isNotNull() & F.col(item_col).isNotNull()) \
        .select(user_col, item_col).distinct()
    per_user = pairs.groupBy(user_col).agg(F.count("*").alias("n"))
    lo, hi = params.min_user_items, params.max_user_items
    kept_rule = F.col("n") >= lo if hi is None else F.col("n").between(lo, hi)
    stats = per_user.agg(F.count("*").alias("users"), F.sum(kept_rule.cast("long")).alias("kept"),
                         F.max("n").alias("most")).first()
    assert stats is not None  # a global aggregate gives one row
    users, kept, most = stats["users"], stats["kept"] or 0, stats["most"] or 0
    need = "Swing needs pairs of users sharing items"
    if users == 0:
        return f"there are no positives; {need}"
    span = f">= {lo}" if hi is None else f"{lo}..{hi}"
    if kept < 2:
        who = "none" if kept == 0 else "only 1"
        return (f"{who} of the {users:,} users with positives has {span} distinct positive items (min_user_items = "
                f"{lo}; the most any user has is {most}); {need}: give more rows per user (or fewer users), or "
                f"lower --min-user-items")
    kept_users = per_user.where(kept_rule).select(user_col)
    shared = (pairs.join(kept_users, user_col).groupBy(item_col).agg(F.count("*").alias("k"))
              .where(F.col("k") >= 2).count())
    return (f"{kept:,} users have {span} distinct positive items, but no two of them share two items "
            f"({shared:,} items have two or more of them); {need}: give more rows per item (fewer items) "
            f"or more rows per user")


def _pack(high: str, low: str) -> Column:
    return F.shiftleft(F.col(high).cast("long"), _PAIR_SHIFT).bitwiseOR(F.col(low))


def _register_head_user_pairs(spark: SparkSession) -> str:
    """Register grec's Java UDF (steps E–G) in this session; its name. Raises SparkSetupError if the
    grec JAR (built by `make setup` into .grec/jars) is not on Spark's classpath."""
    try:
        spark.udf.registerJavaFunction(_HEAD_USER_PAIRS_UDF, HEAD_USER_PAIRS_CLASS, _HEAD_USER_PAIRS_RESULT)
    except Exception as e:  # py4j / AnalysisException: the class is not on the classpath
        if HEAD_USER_PAIRS_CLASS not in str(e):
            raise
        raise SparkSetupError(
            f"Swing needs grec's JVM UDF {HEAD_USER_PAIRS_CLASS}, which is not on this Spark session's "
            "classpath: run `make setup` (it compiles etl/jvm into .grec/jars/grec-jvm.jar) and start "
            "Spark through etl.session.get_spark or with SPARK_CONF_DIR=.grec/conf; on Databricks "
            "install grec-jvm.jar as a JAR cluster library; under spark-submit pass "
            "`--jars \"$(grec jars --sep ,)\"` (docs/etl.md, Deploying the wheel)") from e
    return _HEAD_USER_PAIRS_UDF


def _heads_and_tails(df: DataFrame, array_col: str, head: str, tail: str) -> DataFrame:
    """One row per element x of `array_col`: `head` = x and `tail` = the elements after x (non-empty).

    Exploding the tails yields every unordered pair of the array exactly once, oriented by the array
    order, without building the n² pair list in one row.
    """
    n = F.size(array_col)
    return (df.select("*", F.posexplode(array_col).alias("__pos", head))
            .where(F.col("__pos") < n - 1)
            .withColumn(tail, F.slice(array_col, F.col("__pos") + 2, n - F.col("__pos") - 1))
            .drop("__pos", array_col))
