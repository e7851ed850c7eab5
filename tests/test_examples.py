"""Training examples (SPEC §5) from hand-built nodes and neighbour lists."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from etl.jobs.examples import parquet_layout
from etl.transforms.examples import ExampleParams, ParquetLayout, build_examples, domain_vocabulary
from etl.transforms.split import SplitCutoffs
from schemas.tables import ITEMS, NEIGHBORS, NODES, PAD_NODE, PAD_TYPE, examples, interactions

LABELS = ["like", "love"]
CUTOFFS = SplitCutoffs(val_start=date(2024, 1, 3), eval_start=date(2024, 1, 4))
K = 3


ROWS = [  # user, item, date, domain, like, love
    ("u1", "i1", date(2024, 1, 1), "B", 1, 0),
    ("u2", "i1", date(2024, 1, 2), "B", 0, 0),
    ("u1", "i2", date(2024, 1, 3), "A", 1, 1),
    ("u3", "i2", date(2024, 1, 4), "A", 0, 0),
]
NODE_ROWS = [
    (0, "user", "u1", None, [1.0], 5), (1, "user", "u2", None, [2.0], 1), (2, "user", "u3", None, [3.0], 0),
    (3, "item", "i1", "B", [7.0, 8.0], 2), (4, "item", "i2", "A", [9.0, 0.5], 0),
]
NEIGHBOR_ROWS = [  # node_id, nbr_ids, nbr_weights, nbr_types, degree
    (0, [3, 4, 1, 2, 3], [0.5, 0.25, 1.0, 2.0, 3.0], [0, 1, 2, 2, 1], 5),
    (1, [3], [0.75], [0], 1),
    (2, [], [], [], 0),
    (3, [0, 1], [1.5, 1.25], [1, 0], 2),
    (4, [], [], [], 0),
]
SLIM_COLUMNS = ["user_node", "item_node", "day", "split", "domain_id", *LABELS]


def _build(spark, neighbor_arrays: bool):
    log = spark.createDataFrame([(u, i, datetime(d.year, d.month, d.day, 8), d, dom, lk, lv)
                                 for u, i, d, dom, lk, lv in ROWS], interactions(LABELS).spark_schema())
    nodes = spark.createDataFrame(NODE_ROWS, NODES.spark_schema())
    neighbors = spark.createDataFrame(NEIGHBOR_ROWS, NEIGHBORS.spark_schema())
    items = spark.createDataFrame([("i9", "C", [0.0, 0.0])], ITEMS.spark_schema())
    domains = domain_vocabulary(log, items)
    ex = build_examples(log, nodes, neighbors,
                        ExampleParams(LABELS, CUTOFFS, domains, k=K, neighbor_arrays=neighbor_arrays))
    return domains, {(r["user_node"], r["item_node"]): r for r in ex.collect()}, ex.schema


@pytest.fixture(scope="module")
def built(spark):
    """Rows with neighbour arrays (neighbor_arrays=True)."""
    return _build(spark, neighbor_arrays=True)


@pytest.fixture(scope="module")
def slim(spark):
    """The default layout."""
    return _build(spark, neighbor_arrays=False)


def test_vocabulary_sorted_over_logs_and_items(built):
    domains, _, _ = built
    assert domains == ["A", "B", "C"]


@pytest.mark.parametrize("layout", ["slim", "built"])
def test_one_example_per_impression_with_ids_split_day_domain(layout, request):
    _, ex, _ = request.getfixturevalue(layout)
    assert set(ex) == {(0, 3), (1, 3), (0, 4), (2, 4)}
    expected = {(0, 3): ("train", 19723, 1, 1, 0), (1, 3): ("train", 19724, 1, 0, 0),
                (0, 4): ("val", 19725, 0, 1, 1), (2, 4): ("eval", 19726, 0, 0, 0)}
    for key, (split, day, dom, like, love) in expected.items():
        r = ex[key]
        assert (r["split"], r["day"], r["domain_id"], r["like"], r["love"]) == (split, day, dom, like, love), key
    assert date(1970, 1, 1).toordinal() + 19723 == date(2024, 1, 1).toordinal()


def test_slim_rows_carry_only_the_impression(slim):
    _, ex, schema = slim
    assert schema.fieldNames() == SLIM_COLUMNS
    assert all(list(r.asDict()) == SLIM_COLUMNS for r in ex.values())
    assert examples(LABELS).names == examples(LABELS, neighbor_arrays=False).names == SLIM_COLUMNS


def test_slim_rows_do_not_read_the_neighbour_lists(spark):
    """Slim rows need only the node ids: a neighbours frame that cannot be computed is never run."""
    from pyspark.sql import functions as F

    log = spark.createDataFrame([("u1", "i1", datetime(2024, 1, 1, 8), date(2024, 1, 1), "B", 1, 0)],
                                interactions(LABELS).spark_schema())
    nodes = spark.createDataFrame(NODE_ROWS, NODES.spark_schema())
    broken = spark.createDataFrame(NEIGHBOR_ROWS, NEIGHBORS.spark_schema()).withColumn(
        "degree", F.raise_error(F.lit("gold.neighbors was read")).cast("long"))
    ex = build_examples(log, nodes, broken, ExampleParams(LABELS, CUTOFFS, ["B"], k=K)).collect()
    assert [(r["user_node"], r["item_node"]) for r in ex] == [(0, 3)]
    with pytest.raises(Exception, match="gold.neighbors was read"):
        build_examples(log, nodes, broken, ExampleParams(LABELS, CUTOFFS, ["B"], k=K, neighbor_arrays=True)).collect()


def test_features_copied_with_neighbour_arrays(built):
    _, ex, _ = built
    assert list(ex[(0, 3)]["user_features"]) == [1.0] and list(ex[(0, 3)]["item_features"]) == [7.0, 8.0]


def test_neighbor_arrays_cut_padded_and_counted(built):
    _, ex, _ = built
    r = ex[(0, 3)]
    assert r["user_nbr_ids"] == [3, 4, 1] and r["user_nbr_weights"] == [0.5, 0.25, 1.0]
    assert r["user_nbr_types"] == [0, 1, 2] and r["user_nbr_count"] == 3 and r["user_degree"] == 5
    assert r["item_nbr_ids"] == [0, 1, PAD_NODE] and r["item_nbr_weights"] == [1.5, 1.25, 0.0]
    assert r["item_nbr_types"] == [1, 0, PAD_TYPE] and r["item_nbr_count"] == 2 and r["item_degree"] == 2
    r = ex[(2, 4)]
    assert r["user_nbr_ids"] == [PAD_NODE] * K and r["user_nbr_types"] == [PAD_TYPE] * K
    assert r["user_nbr_count"] == 0 and r["item_nbr_count"] == 0
    for r in ex.values():
        for side in ("user", "item"):
            assert len(r[f"{side}_nbr_ids"]) == len(r[f"{side}_nbr_weights"]) == len(r[f"{side}_nbr_types"]) == K
            assert r[f"{side}_nbr_count"] == min(K, r[f"{side}_degree"])


def test_neighbor_arrays_are_the_node_lists_cut_to_k(built):
    """Every row's lists, unpadded, are its node's gold.neighbors lists cut to k (from the input rows)."""
    _, ex, _ = built
    lists = {n: (ids, ws, ts, deg) for n, ids, ws, ts, deg in NEIGHBOR_ROWS}
    for r in ex.values():
        for side in ("user", "item"):
            ids, ws, ts, deg = lists[r[f"{side}_node"]]
            n = r[f"{side}_nbr_count"]
            assert n == len(ids[:K]) and r[f"{side}_degree"] == deg
            assert (r[f"{side}_nbr_ids"][:n], r[f"{side}_nbr_weights"][:n], r[f"{side}_nbr_types"][:n]) == (
                ids[:K], ws[:K], ts[:K])


@pytest.mark.parametrize("layout, neighbor_arrays", [("slim", False), ("built", True)])
def test_schema_matches_table(layout, neighbor_arrays, request):
    _, _, schema = request.getfixturevalue(layout)
    want = examples(LABELS, neighbor_arrays).spark_schema()
    assert schema.fieldNames() == want.fieldNames()
    assert [f.dataType for f in schema.fields] == [f.dataType for f in want.fields]


def test_neighbor_arrays_layout_column_order():
    assert examples(LABELS, neighbor_arrays=True).names == [
        "user_node", "item_node", "day", "split", "domain_id", "user_features", "item_features", *LABELS,
        *(f"{side}_{c}" for side in ("user", "item")
          for c in ("nbr_ids", "nbr_weights", "nbr_types", "nbr_count", "degree"))]


def test_params_validated():
    with pytest.raises(ValueError, match="sorted"):
        ExampleParams(LABELS, CUTOFFS, ["b", "a"])
    with pytest.raises(ValueError, match="sorted"):
        ExampleParams(LABELS, CUTOFFS, [])
    with pytest.raises(ValueError, match="k must be"):
        ExampleParams(LABELS, CUTOFFS, ["a"], k=0)


def test_parquet_layout_bounds_row_groups_and_files_then_restores(spark, tmp_path):
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    df = (spark.range(20000).coalesce(1)
          .select("id", F.array_repeat(F.col("id").cast("float"), 16).alias("v")))
    with parquet_layout(spark, ParquetLayout(row_group_bytes=64 * 1024, max_records_per_file=8000)):
        df.write.format("delta").save(str(tmp_path / "t"))
    metas = [pq.ParquetFile(f).metadata for f in sorted((tmp_path / "t").glob("*.parquet"))]
    assert sorted(m.num_rows for m in metas) == [4000, 8000, 8000]        # rows capped per file
    groups = [m.row_group(i) for m in metas for i in range(m.num_row_groups)]
    # ~1.4 MB of data in 64 KiB groups (Parquet checks the size every 100+ rows, so allow slack)
    assert len(groups) > 10 and max(g.total_byte_size for g in groups) < 2 * 64 * 1024
    assert spark.conf.get("spark.sql.files.maxRecordsPerFile") == "0"
    assert spark.sparkContext._jsc.hadoopConfiguration().get("parquet.block.size") is None
