"""Sources: contract files, MovieLens-100K (real data), KuaiRand format, the registry and its flags."""
from __future__ import annotations

import argparse
import math
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest

from etl.sources import (SOURCE_COL, SourceError, SourceWarning, TsUnit, add_source_arguments, load_source,
                         load_source_from_args)
from etl.sources import movielens
from etl.sources.base import shared_dir

ML_DIR = shared_dir() / "data" / "movielens-100k"
needs_movielens = pytest.mark.skipif(not (ML_DIR / "u.data").is_file(),
                                     reason=f"MovieLens-100K not found at {ML_DIR}")


def _sorted(rows):
    return sorted((tuple(r) for r in rows), key=lambda r: tuple(str(x) for x in r))


def _rows(df, *cols):
    return _sorted(df.select(*cols).collect())


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_source_arguments(parser)
    return parser.parse_args(argv)


# ---- contract --------------------------------------------------------------------------------------

CONTRACT_CSV = """user_id,item_id,ts,domain,like,extra,,love
u1,i1,2024-01-01 10:00:00,books,1,x,y,0
u2,i2,not a time,books,maybe,x,y,1
,i3,2024-01-02 00:00:00,,1,x,y,
"""


def test_contract_csv_keeps_every_row_as_read_and_warns_about_extra_columns(spark, tmp_path):
    path = _write(tmp_path / "logs.csv", CONTRACT_CSV)
    with pytest.warns(SourceWarning, match=r"\['extra', '_c6'\]"):
        src = load_source(spark, "contract", interactions=path, labels=("like", "love"))
    df = src.interactions
    assert df.columns == ["user_id", "item_id", "ts", "domain", "like", "love", SOURCE_COL]
    assert all(t == "string" for _, t in df.dtypes)
    assert _rows(df, "user_id", "item_id", "ts", "domain", "like", "love") == _sorted([
        ("u1", "i1", "2024-01-01 10:00:00", "books", "1", "0"),
        ("u2", "i2", "not a time", "books", "maybe", "1"),
        (None, "i3", "2024-01-02 00:00:00", None, "1", None)])
    assert [urlparse(r[0]).path for r in df.select(SOURCE_COL).distinct().collect()] == [path]
    assert (src.labels, src.positive_label, src.numeric, src.ts_unit) == (
        ["like", "love"], "like", [], TsUnit.TIMESTAMP)
    assert src.users is None and src.items is None


def test_contract_missing_required_column_names_file_column_and_found_columns(spark, tmp_path):
    path = _write(tmp_path / "logs.csv", "user_id,item_id,timestamp,domain,like\nu,i,1,d,1\n")
    with pytest.raises(SourceError) as e:
        load_source(spark, "contract", interactions=path, labels=("like",))
    msg = str(e.value)
    assert "logs.csv" in msg and "['ts']" in msg and "timestamp" in msg and "domain" in msg


def test_contract_missing_path_is_named(spark, tmp_path):
    missing = str(tmp_path / "nowhere" / "logs.csv")
    with pytest.raises(SourceError, match="nowhere/logs.csv"):
        load_source(spark, "contract", interactions=missing, labels=("like",))


def test_contract_option_errors(spark, tmp_path):
    path = _write(tmp_path / "logs.csv", "user_id,item_id,ts,domain,like\nu,i,1,d,1\n")
    with pytest.raises(SourceError, match="--labels"):
        load_source(spark, "contract", interactions=path)
    with pytest.raises(SourceError, match="positive label 'click'"):
        load_source(spark, "contract", interactions=path, labels=("like",), positive_label="click")
    with pytest.raises(SourceError, match=r"\['rating'\]"):
        load_source(spark, "contract", interactions=path, labels=("like",), numeric=("rating",))
    with pytest.raises(SourceError, match="no option"):
        load_source(spark, "contract", interactions=path, labels=("like",), rows=3)


def test_contract_parquet_keeps_types_format_is_detected_and_delta_is_refused(spark, tmp_path):
    rows = [("u1", 7, datetime(2024, 1, 1, tzinfo=timezone.utc), "a", 1, 2.5, "junk")]
    df = spark.createDataFrame(rows, "user_id string, item_id long, ts timestamp, domain string, click int, "
                                     "dwell double, note string")
    out = str(tmp_path / "logs")
    df.write.parquet(out)
    with pytest.warns(SourceWarning, match="note"):
        src = load_source(spark, "contract", interactions=out, labels=("click",), numeric=("dwell",))
    assert dict(src.interactions.dtypes) == {"user_id": "string", "item_id": "bigint", "ts": "timestamp",
                                             "domain": "string", "click": "int", "dwell": "double",
                                             SOURCE_COL: "string"}
    assert src.interactions.count() == 1
    delta = str(tmp_path / "delta_logs")
    df.write.format("delta").save(delta)
    with pytest.raises(SourceError, match="is a Delta table"):
        load_source(spark, "contract", interactions=delta, labels=("click",))


def test_contract_side_tables_become_feature_arrays(spark, tmp_path):
    logs = _write(tmp_path / "logs.csv", "user_id,item_id,ts,domain,like\nu1,i1,2024-01-01,d,1\n")
    users = _write(tmp_path / "users.csv", "user_id,age,city,score\nu1,30,paris,0.5\nu2,,rome,1e1\n")
    items = _write(tmp_path / "items.csv", "item_id,domain\ni1,d\n")  # no feature column: empty arrays
    with pytest.warns(SourceWarning, match=r"\['city'\]"):
        src = load_source(spark, "contract", interactions=logs, labels=("like",), users=users, items=items)
    assert src.user_feature_names == ["age", "score"] and src.item_feature_names == []
    assert sorted((r.user_id, list(r.features)) for r in src.users.collect()) == [
        ("u1", [30.0, 0.5]), ("u2", [0.0, 10.0])]
    assert [(r.item_id, r.domain, list(r.features)) for r in src.items.collect()] == [("i1", "d", [])]
    assert {t.schema["features"].dataType.simpleString() for t in (src.users, src.items)} == {"array<float>"}


def test_contract_side_table_without_key_is_an_error(spark, tmp_path):
    logs = _write(tmp_path / "logs.csv", "user_id,item_id,ts,domain,like\nu1,i1,2024-01-01,d,1\n")
    items = _write(tmp_path / "items.csv", "item_id,price\ni1,3\n")
    with pytest.raises(SourceError, match=r"items file .*items.csv.*\['domain'\]"):
        load_source(spark, "contract", interactions=logs, labels=("like",), items=items)


# ---- registry and flags --------------------------------------------------------------------------------

def test_flags_build_typed_options_and_reject_flags_of_other_sources(spark, tmp_path):
    path = _write(tmp_path / "logs.csv", "user_id,item_id,ts,domain,click,like,dwell\nu,i,1700000000000,d,1,0,3\n")
    args = _parse(["--source", "contract", "--interactions", path, "--labels", "click, like",
                   "--numeric", "dwell", "--ts-unit", "ms", "--positive-label", "like"])
    src = load_source_from_args(spark, args)
    assert (src.labels, src.numeric, src.positive_label, src.ts_unit) == (["click", "like"], ["dwell"], "like",
                                                                           TsUnit.MILLIS)
    with pytest.raises(SourceError, match="--rows"):
        load_source_from_args(spark, _parse(["--source", "movielens-100k", "--rows", "5"]))
    with pytest.raises(SourceError, match=r"--ts-unit 'days'.*'ms'"):
        load_source_from_args(spark, _parse(["--source", "contract", "--interactions", path, "--labels", "click",
                                             "--ts-unit", "days"]))
    with pytest.raises(SourceError, match="unknown source 'nope'"):
        load_source(spark, "nope")


# ---- MovieLens-100K ------------------------------------------------------------------------------------

def test_movielens_vocabularies_match_the_dataset_files():
    if not ML_DIR.is_dir():
        pytest.skip(f"MovieLens-100K not found at {ML_DIR}")
    genres = [line.split("|")[0] for line in (ML_DIR / "u.genre").read_text().splitlines() if line.strip()]
    assert list(movielens.GENRES) == genres
    assert list(movielens.OCCUPATIONS) == (ML_DIR / "u.occupation").read_text().split()
    assert set(movielens.GENRE_GROUPS) == set(genres)


@needs_movielens
def test_movielens_matches_the_published_stats(spark):
    from pyspark.sql import functions as F

    src = load_source(spark, "movielens-100k")
    df = src.interactions
    s = df.agg(F.count("*").alias("n"), F.countDistinct("user_id").alias("users"),
               F.countDistinct("item_id").alias("items"), F.avg("like").alias("like"), F.avg("love").alias("love"),
               F.min("ts").alias("lo"), F.max("ts").alias("hi"), F.count("domain").alias("with_domain")).first()
    assert (s.n, s.users, s.items, s.with_domain) == (100_000, 943, 1_682, 100_000)
    assert round(s.like, 3) == 0.554 and round(s.love, 3) == 0.212
    lo, hi = (datetime.fromtimestamp(t, timezone.utc) for t in (s.lo, s.hi))
    assert lo.strftime("%Y-%m-%d %H:%M") == "1997-09-20 03:05" and hi.strftime("%Y-%m-%d %H:%M") == "1998-04-22 23:10"
    assert (src.labels, src.positive_label, src.numeric, src.ts_unit) == (
        ["like", "love"], "like", ["rating"], TsUnit.SECONDS)
    assert src.users.count() == 943 and src.items.count() == 1_682
    # rating -> labels on a few raw rows of u.data (196 242 3, 298 474 4, 253 465 5)
    picked = {(r.user_id, r.item_id): (r.like, r.love, r.rating) for r in
              df.where("(user_id, item_id) in (('196','242'), ('298','474'), ('253','465'))").collect()}
    assert picked == {("196", "242"): (0, 0, 3.0), ("298", "474"): (1, 0, 4.0), ("253", "465"): (1, 1, 5.0)}
    # Ratings per domain, from the first listed genre (counted independently in SOURCE-like fashion).
    per_domain = dict(df.groupBy("domain").count().collect())
    assert per_domain == {"action_adventure": 30_218, "drama_romance": 27_466, "comedy": 22_796,
                          "thriller_crime_horror": 11_625, "family": 6_523, "other": 1_362, "unknown": 10}


@needs_movielens
def test_movielens_side_features_by_hand(spark):
    src = load_source(spark, "movielens-100k")
    users = {r.user_id: dict(zip(src.user_feature_names, r.features)) for r in src.users.collect()}
    # u.user line 1: "1|24|M|technician|85711"; line 2: "2|53|F|other|94043"
    on = lambda feats: sorted(k for k, v in feats.items() if v == 1.0)
    assert on(users["1"]) == ["age_18_24", "gender_m", "occupation_technician"]
    assert on(users["2"]) == ["age_50_55", "gender_f", "occupation_other"]
    assert all(sum(f.values()) == 3.0 for f in users.values())
    items = {r.item_id: (r.domain, dict(zip(src.item_feature_names, r.features))) for r in src.items.collect()}
    dom, toy_story = items["1"]  # Toy Story (1995): Animation, Children's, Comedy
    assert dom == "family"
    assert on({k: v for k, v in toy_story.items() if k.startswith("genre_")}) == [
        "genre_animation", "genre_childrens", "genre_comedy"]
    assert toy_story["release_year_scaled"] == pytest.approx(0.95) and toy_story["release_year_missing"] == 0.0
    dom, unknown = items["267"]  # "267|unknown||||1|0|..." : no date, genre 'unknown'
    assert dom == "unknown" and unknown["release_year_scaled"] == 0.0 and unknown["release_year_missing"] == 1.0


def _copy_movielens(dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in movielens.SHA256:
        (dst / name).write_bytes((ML_DIR / name).read_bytes())
    return dst


@needs_movielens
def test_movielens_checksum_mismatch_is_an_error_unless_skipped(spark, tmp_path):
    folder = _copy_movielens(tmp_path / "ml")
    with open(folder / "u.user", "ab") as f:
        f.write(b"944|30|M|writer|00000\n")
    with pytest.raises(SourceError, match=r"u\.user: sha256 .*--no-verify"):
        load_source(spark, "movielens-100k", data_dir=str(folder))
    src = load_source(spark, "movielens-100k", data_dir=str(folder), no_verify=True)
    assert src.users.count() == 944


def test_movielens_missing_folder_names_folder_and_url(spark, tmp_path):
    url = "http://127.0.0.1:9/ml-100k.zip"  # the discard port: refused at once, like a machine offline
    with pytest.raises(SourceError) as e:
        load_source(spark, "movielens-100k", data_dir=str(tmp_path / "absent"), cache_dir=str(tmp_path / "cache"),
                    url=url)
    assert str(tmp_path / "absent") in str(e.value) and url in str(e.value) and "--data-dir" in str(e.value)


@needs_movielens
def test_movielens_download_is_extracted_verified_and_cached(spark, tmp_path):
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in movielens.SHA256:
            z.write(ML_DIR / name, f"ml-100k/{name}")
    cache = tmp_path / "cache"
    src = load_source(spark, "movielens-100k", data_dir=str(tmp_path / "absent"), cache_dir=str(cache),
                      url=archive.as_uri())
    assert str(cache / "ml-100k") in src.description and src.interactions.count() == 100_000
    archive.unlink()  # the second load must use the cache
    again = load_source(spark, "movielens-100k", data_dir=str(tmp_path / "absent"), cache_dir=str(cache),
                        url=archive.as_uri())
    assert again.items.count() == 1_682


# ---- KuaiRand format -----------------------------------------------------------------------------------

LOG_HEADER = ("user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,"
              "long_view,play_time_ms,duration_ms,profile_stay_time,comment_stay_time,is_profile_enter,is_rand,tab")
# (user, video, time_ms, click, like, follow, long_view, play_ms, duration_ms, tab); date/hourmin are filler
LOG_ROWS = [
    (0, 10, 1649376000000, 1, 0, 0, 1, 12000, 15000, 1), (0, 11, 1649376060000, 0, 0, 0, 0, 800, 9000, 1),
    (0, 12, 1649376120000, 1, 1, 0, 1, 30000, 31000, 4), (1, 10, 1649462400000, 1, 1, 1, 1, 14000, 15000, 1),
    (1, 13, 1649462460000, 0, 0, 0, 0, 0, 20000, 2), (1, 13, 1649462520000, 1, 0, 0, 0, 1000, 20000, 3),
    (2, 10, 1649548800000, 0, 0, 0, 0, 500, 15000, 4), (2, 11, 1649548860000, 1, 0, 0, 1, 9000, 9000, 0),
    (2, 12, 1649548920000, 1, 0, 0, 0, 2000, 31000, 4), (2, 14, 1649548980000, 1, 1, 0, 1, 60000, 45000, 1),
    (3, 10, 1649635200000, 1, 0, 0, 1, 15000, 15000, 1), (3, 11, 1649635260000, 0, 0, 0, 0, 100, 9000, 1),
    (3, 14, 1649635320000, 0, 0, 0, 0, 300, 45000, 6), (4, 12, 1649721600000, 1, 0, 1, 1, 31000, 31000, 4),
    (4, 13, 1649721660000, 1, 1, 0, 1, 25000, 20000, 2), (4, 15, 1649721720000, 0, 0, 0, 0, 200, 7000, 0),
    (5, 15, 1649808000000, 1, 0, 0, 0, 1500, 7000, 0), (5, 10, 1649808060000, 0, 0, 0, 0, 700, 15000, 1),
    (5, 14, 1649808120000, 1, 0, 0, 1, 40000, 45000, 6), (5, 12, 1649808180000, 0, 0, 0, 0, 900, 31000, 4),
]
USER_CSV = """user_id,user_active_degree,is_lowactive_period,is_live_streamer,is_video_author,follow_user_num,\
follow_user_num_range,fans_user_num,fans_user_num_range,friend_user_num,friend_user_num_range,register_days,\
register_days_range,onehot_feat0
0,full_active,0,1,0,9,"(0,10]",0,0,2,"[1,5)",100,"(60,90]",3
1,middle_active,1,0,1,,0,20,"[10,100)",0,0,3,"(0,15]",1
"""
VIDEO_CSV = """video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,\
server_height,music_id,music_type,tag
10,7,NORMAL,2022-03-01,ShortImport,public,15000,720,1280,1,9,28
12,7,AD,2022-03-02,ShortImport,public,31000,0,,1,9,28
"""


def _kuairand_dir(tmp_path: Path, with_side: bool = True) -> Path:
    d = tmp_path / "kuairand"
    d.mkdir()
    lines = [LOG_HEADER] + [f"{u},{v},20220408,{800 + k},{t},{c},{lk},{f},0,0,0,{lv},{p},{dur},0,0,0,0,{tab}"
                            for k, (u, v, t, c, lk, f, lv, p, dur, tab) in enumerate(LOG_ROWS)]
    half = len(lines) // 2
    (d / "log_standard_4_08_to_4_21_pure.csv").write_text("\n".join(lines[:half]) + "\n")
    (d / "log_standard_4_22_to_5_08_pure.csv").write_text("\n".join([LOG_HEADER, *lines[half:]]) + "\n")
    random_row = "9,99,20220422,800,1650585600000,1,0,0,0,0,0,0,1,1,0,0,0,1,1"
    (d / "log_random_4_22_to_5_08_pure.csv").write_text(f"{LOG_HEADER}\n{random_row}\n")
    if with_side:
        (d / "user_features_pure.csv").write_text(USER_CSV)
        (d / "video_features_basic_pure.csv").write_text(VIDEO_CSV)
    return d


def test_kuairand_log_mapping_row_by_row(spark, tmp_path):
    src = load_source(spark, "kuairand", data_dir=str(_kuairand_dir(tmp_path)))
    assert src.interactions.columns == ["user_id", "item_id", "ts", "domain", "click", "long_view", "like", "follow",
                                        "play_time_ms", "duration_ms", SOURCE_COL]
    assert (src.labels, src.positive_label, src.numeric, src.ts_unit) == (
        ["click", "long_view", "like", "follow"], "click", ["play_time_ms", "duration_ms"], TsUnit.MILLIS)
    expected = _sorted((str(u), str(v), str(t), f"tab_{tab}", str(c), str(lv), str(lk), str(f), str(p), str(dur))
                      for u, v, t, c, lk, f, lv, p, dur, tab in LOG_ROWS)
    assert _rows(src.interactions, *src.interactions.columns[:-1]) == expected
    sources = {Path(r[0]).name for r in src.interactions.select(SOURCE_COL).distinct().collect()}
    assert sources == {"log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv"}


def test_kuairand_log_glob_can_add_random_logs(spark, tmp_path):
    src = load_source(spark, "kuairand", data_dir=str(_kuairand_dir(tmp_path)), log_glob="log_*.csv")
    assert src.interactions.count() == len(LOG_ROWS) + 1


def test_kuairand_side_tables_by_hand(spark, tmp_path):
    src = load_source(spark, "kuairand", data_dir=str(_kuairand_dir(tmp_path)))
    users = {r.user_id: dict(zip(src.user_feature_names, r.features)) for r in src.users.collect()}
    assert users["0"] == pytest.approx({
        "is_lowactive_period": 0, "is_live_streamer": 1, "is_video_author": 0, "log1p_follow_user_num": math.log(10),
        "log1p_fans_user_num": 0, "log1p_friend_user_num": math.log(3), "log1p_register_days": math.log(101),
        "active_degree_high_active": 0, "active_degree_full_active": 1, "active_degree_middle_active": 0,
        "active_degree_unknown": 0})
    assert users["1"]["log1p_follow_user_num"] == 0.0 and users["1"]["active_degree_middle_active"] == 1.0
    items = {r.item_id: (r.domain, dict(zip(src.item_feature_names, r.features))) for r in src.items.collect()}
    # domain = the item's most frequent tab: video 13 has tabs 2, 3, 2 -> tab_2; video 14 has 1, 6, 6 -> tab_6
    assert {k: d for k, (d, _) in items.items()} == {
        "10": "tab_1", "11": "tab_1", "12": "tab_4", "13": "tab_2", "14": "tab_6", "15": "tab_0"}
    assert items["10"][1] == pytest.approx({"is_ad": 0, "log1p_duration_s": math.log1p(15),
                                            "height_width_ratio": 1280 / 720, "video_features_missing": 0})
    assert items["12"][1] == pytest.approx({"is_ad": 1, "log1p_duration_s": math.log1p(31), "height_width_ratio": 0,
                                            "video_features_missing": 0})
    assert items["11"][1] == {"is_ad": 0, "log1p_duration_s": 0, "height_width_ratio": 0, "video_features_missing": 1}


def test_kuairand_tie_in_tabs_goes_to_the_smaller_tab_name(spark, tmp_path):
    d = tmp_path / "k"
    d.mkdir()
    (d / "log_standard_x.csv").write_text(LOG_HEADER + "\n" + "\n".join(
        f"{u},50,20220408,800,{1649376000000 + u},1,0,0,0,0,0,1,1,1,0,0,0,0,{tab}"
        for u, tab in [(1, 3), (2, 2)]) + "\n")
    (d / "video_features_basic_x.csv").write_text(VIDEO_CSV)
    src = load_source(spark, "kuairand", data_dir=str(d))
    assert [(r.item_id, r.domain) for r in src.items.collect()] == [("50", "tab_2")]
    assert src.users is None and src.user_feature_names == []


def test_kuairand_errors_name_the_files(spark, tmp_path):
    with pytest.raises(SourceError, match="no log file matches .*empty/log_standard_"):
        (tmp_path / "empty").mkdir()
        load_source(spark, "kuairand", data_dir=str(tmp_path / "empty"))
    d = tmp_path / "bad"
    d.mkdir()
    (d / "log_standard_1.csv").write_text(
        "user_id,video_id,time_ms,is_click,is_like,is_follow,long_view\n1,2,3,1,0,0,0\n")
    with pytest.raises(SourceError, match=r"log_standard_\*\.csv: missing required column\(s\) \['tab'\]"):
        load_source(spark, "kuairand", data_dir=str(d))
    with pytest.raises(SourceError, match="--data-dir"):
        load_source(spark, "kuairand")
