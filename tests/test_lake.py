"""The lake and the stage contract: Delta time travel, validate-then-commit, the run manifest."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from etl.lake import LakeError, RunManifest
from etl.session import has_graphframes_jar
from etl.stage import Stage, StageFailed
from schemas import Col, Expectation, Kind, TableSchema

TOY = TableSchema("silver.toy", [Col("k", Kind.LONG, "key"), Col("v", Kind.DOUBLE, "value", min_value=0.0)],
                  key=("k",), unique_key=True)


def toy(spark, rows):
    return spark.createDataFrame(rows, TOY.spark_schema())


def test_delta_write_history_merge_and_time_travel(spark, lake):
    path = lake.path(TOY)
    lake.write(toy(spark, [(1, 1.0), (2, 2.0)]), TOY, run_id="r", stage="s")
    time.sleep(1.1)  # commit timestamps have second resolution in the reader's time-travel lookup
    DeltaTable.forPath(spark, path).alias("t").merge(
        toy(spark, [(2, 20.0), (3, 3.0)]).alias("s"), "t.k = s.k"
    ).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    hist = DeltaTable.forPath(spark, path).history().orderBy("version").collect()
    assert [h.operation for h in hist] == ["CREATE OR REPLACE TABLE AS SELECT", "MERGE"]
    meta = json.loads(hist[0].userMetadata)  # plus a token that finds the commit among other runs' commits
    assert (meta["run_id"], meta["stage"]) == ("r", "s") and set(meta) == {"run_id", "stage", "write"}
    assert sorted(tuple(r) for r in lake.read(spark, TOY).collect()) == [(1, 1.0), (2, 20.0), (3, 3.0)]
    assert sorted(tuple(r) for r in lake.read(spark, TOY, version=0).collect()) == [(1, 1.0), (2, 2.0)]
    v0_time = hist[0].timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert lake.read(spark, TOY, timestamp=v0_time).count() == 2


def test_write_refuses_wrong_column_types(spark, lake):
    bad = spark.createDataFrame([(1, "x")], "k long, v string")
    with pytest.raises(LakeError, match="v: string .expected double"):
        lake.write(bad, TOY, run_id="r", stage="s")


def test_read_of_a_missing_table_names_it(spark, lake):
    with pytest.raises(LakeError, match="silver.toy does not exist"):
        lake.read(spark, TOY)


def test_failed_check_commits_nothing_and_reports(spark, lake):
    with Stage(spark, lake, "r1", "toy", {"x": 1}) as st:
        st.commit(st.check(toy(spark, [(1, 1.0)]), TOY.expectations(), TOY), TOY)
    assert lake.version(spark, TOY) == 0

    with pytest.raises(StageFailed) as err:
        with Stage(spark, lake, "r2", "toy") as st:
            st.commit(st.check(toy(spark, [(1, 1.0), (2, -5.0), (2, 3.0)]), TOY.expectations(), TOY), TOY)
    assert lake.version(spark, TOY) == 0, "a failed stage must leave the table at its previous version"
    failed = {o.expectation.split("(")[0] for o in err.value.report.failures}
    assert failed == {"ExpectColumnValuesToBeBetween", "ExpectColumnValuesToBeUnique"}
    md = Path(err.value.report_path.removeprefix("file://") + ".md").read_text()
    assert "FAILED" in md and "-5.0" in md
    runs = {r.run_id: r for r in RunManifest(lake).records(spark).collect()}
    assert runs["r1"].status == "succeeded" and runs["r2"].status == "failed"
    assert "ExpectColumnValuesToBeBetween" in runs["r2"].message
    assert RunManifest(lake).outputs_of(spark, "r1")["silver.toy"].version == 0


def test_exception_inside_a_stage_is_recorded_and_reraised(spark, lake):
    with pytest.raises(ZeroDivisionError):
        with Stage(spark, lake, "r3", "boom"):
            1 / 0
    row = RunManifest(lake).records(spark, "r3").first()
    assert row.status == "failed" and "ZeroDivisionError" in row.message
    assert lake.version(spark, TOY) is None


def test_custom_sql_expectation(spark, lake):
    rule = Expectation("UnexpectedRowsExpectation", {
        "description": "no negative keys", "unexpected_rows_query": "SELECT * FROM {batch} WHERE k < 0"})
    with pytest.raises(StageFailed):
        with Stage(spark, lake, "r4", "toy") as st:
            st.check(toy(spark, [(-1, 1.0)]), [rule], TOY)


def test_check_empty_trusts_a_proof_only_while_every_check_passed(spark, lake):
    """A rule the caller's screen proved empty is not counted (here its frame has a row, which a
    count would fail); after a failed check the screen is not run and every frame is counted."""
    bad, clean = toy(spark, [(1, 1.0)]), toy(spark, [])
    asked = []

    def proof():
        asked.append(True)
        return {"proven"}

    with Stage(spark, lake, "r5", "toy") as st:
        st.check_empty({"proven": bad, "counted": clean}, TOY, proven=proof)
    assert asked == [True] and st.report.success

    with pytest.raises(StageFailed) as err:
        with Stage(spark, lake, "r6", "toy") as st:
            st.check(toy(spark, [(1, -1.0)]), TOY.expectations(), TOY)
            st.check_empty({"proven": bad, "counted": clean}, TOY, proven=proof)
    assert asked == [True], "the screen must not run once a check failed"
    failed = [o.table for o in err.value.report.failures]
    assert f"{TOY.name}: proven" in failed and f"{TOY.name}: counted" not in failed

    with pytest.raises(ValueError, match="not rules of silver.toy"):
        with Stage(spark, lake, "r7", "toy") as st:
            st.check_empty({"counted": clean}, TOY, proven=lambda: {"other"})

    # frames built by a function: the building is check time
    with Stage(spark, lake, "r8", "toy") as st:
        st.check_empty(lambda: time.sleep(0.5) or {"counted": clean}, TOY)
    assert st.report.success and st.report.seconds >= 0.5


@pytest.mark.skipif(not has_graphframes_jar(), reason="GraphFrames JARs not in .grec/jars (registry does not serve them)")
def test_graphframes_degrees_and_components(spark, tmp_path):
    from graphframes import GraphFrame

    spark.sparkContext.setCheckpointDir(str(tmp_path / "ckpt"))
    v = spark.createDataFrame([(i,) for i in range(5)], "id long")
    e = spark.createDataFrame([(0, 1), (1, 2), (3, 4)], "src long, dst long")
    g = GraphFrame(v, e)
    assert {r.id: r.inDegree for r in g.inDegrees.collect()} == {1: 1, 2: 1, 4: 1}
    comp = {r.id: r.component for r in g.connectedComponents().collect()}
    assert comp[0] == comp[1] == comp[2] != comp[3] == comp[4]
