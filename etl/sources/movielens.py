"""`movielens-100k` source: the real GroupLens MovieLens-100K files mapped onto the input contract
(docs/method.md §Contract).

Every rated pair is an impression (no invented negatives); tasks `like` = rating >= 4 and
`love` = rating == 5; numeric `rating`; ts = the file's unix seconds (ts_unit s, ingest converts);
domain = the genre group (GENRE_GROUPS) of the item's first listed genre. Side features: users get
age-bucket, gender and occupation one-hots; items get the 19-genre multi-hot and the release year.

The files are read from --data-dir (default `<shared>/data/movielens-100k`, shared = $GREC_SHARED or
`<repo>/../shared`), which must be a local folder: their sha256 is checked on the driver. When the
folder lacks them, the GroupLens zip is downloaded once into a cache folder and checked the same way.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.sources.base import (DOMAIN, FEATURES_COL, ITEM_ID, SOURCE_COL, TS, USER_ID, SourceData,
                              SourceError, TsUnit, features_array, one_hot, option, shared_dir)
from schemas.layout import to_uri

NAME = "movielens-100k"
URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"

# From the dataset's published SOURCE.md (shared/data/movielens-100k), which records the sha256 of
# the GroupLens files as kept for this project.
SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}

# u.genre, in the order of u.item's 19 flag columns.
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")

# Domain = group of the first listed genre. 19 genres are too many domains for 100k ratings (eight
# would hold < 1,000 ratings each), so they are grouped by audience: Sci-Fi joins the spectacle
# genres; Animation, Children's, Fantasy and Musical are family films; the dark genres share one
# group; Documentary, War and Western (together 1.4% of first genres by rating) form `other`.
# Resulting ratings per domain: action_adventure 30.2k, drama_romance 27.5k, comedy 22.8k,
# thriller_crime_horror 11.6k, family 6.5k, other 1.4k, unknown 10.
GENRE_GROUPS = {
    "unknown": "unknown",
    "Action": "action_adventure", "Adventure": "action_adventure", "Sci-Fi": "action_adventure",
    "Comedy": "comedy",
    "Drama": "drama_romance", "Romance": "drama_romance",
    "Crime": "thriller_crime_horror", "Film-Noir": "thriller_crime_horror", "Horror": "thriller_crime_horror",
    "Mystery": "thriller_crime_horror", "Thriller": "thriller_crime_horror",
    "Animation": "family", "Children's": "family", "Fantasy": "family", "Musical": "family",
    "Documentary": "other", "War": "other", "Western": "other",
}
NO_GENRE = "unknown"

# u.occupation, in file order.
OCCUPATIONS = ("administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
               "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
               "retired", "salesman", "scientist", "student", "technician", "writer")
GENDERS = ("M", "F")
# (name, lowest age) in ascending order; a bucket runs to the next one's lowest age - 1.
AGE_BUCKETS = (("age_under_18", 0), ("age_18_24", 18), ("age_25_34", 25), ("age_35_44", 35),
               ("age_45_49", 45), ("age_50_55", 50), ("age_56_plus", 56))

USER_FEATURES = [*(name for name, _ in AGE_BUCKETS), *(f"gender_{g.lower()}" for g in GENDERS),
                 *(f"occupation_{o}" for o in OCCUPATIONS)]
ITEM_FEATURES = [*("genre_" + re.sub(r"[^a-z]+", "_", g.lower().replace("'", "")) for g in GENRES),
                 "release_year_scaled", "release_year_missing"]

_RATINGS = T.StructType([T.StructField(USER_ID, T.StringType()), T.StructField(ITEM_ID, T.StringType()),
                         T.StructField("rating", T.IntegerType()), T.StructField(TS, T.LongType())])
_USERS = T.StructType([T.StructField(n, T.StringType()) for n in (USER_ID, "age", "gender", "occupation", "zip")])
_ITEMS = T.StructType([T.StructField(n, T.StringType()) for n in
                       (ITEM_ID, "title", "release_date", "video_release_date", "imdb_url")]
                      + [T.StructField(f"g{i}", T.IntegerType()) for i in range(len(GENRES))])


def default_cache_dir() -> Path:
    return Path(os.environ.get("GREC_CACHE") or Path.home() / ".cache" / "grec")


@dataclass(frozen=True)
class MovieLensOptions:
    data_dir: Optional[str] = option(
        None, "--data-dir", "dataset folder (default: <shared>/data/movielens-100k; shared = $GREC_SHARED "
                            "or <repo>/../shared)")
    no_verify: bool = option(False, "--no-verify", "skip the sha256 check of the MovieLens files", bool)
    cache_dir: Optional[str] = option(
        None, "--cache-dir", "where a downloaded copy is kept (default: $GREC_CACHE or ~/.cache/grec)")
    url: str = option(URL, None, "where to download ml-100k.zip from when the data folder lacks the files")


def _has_files(folder: Path) -> bool:
    return all((folder / f).is_file() for f in SHA256)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(folder: Path) -> None:
    for name, expected in SHA256.items():
        got = sha256(folder / name)
        if got != expected:
            raise SourceError(f"{folder / name}: sha256 {got} differs from the published {expected} "
                              "(a modified copy? many on the web are); pass --no-verify to read it anyway")


def download(url: str, cache: Path) -> Path:
    """Fetch the GroupLens zip and extract the files grec reads into `<cache>/ml-100k`."""
    target = cache / "ml-100k"
    target.mkdir(parents=True, exist_ok=True)
    archive = cache / "ml-100k.zip"
    with urllib.request.urlopen(url, timeout=60) as resp, open(archive, "wb") as out:
        shutil.copyfileobj(resp, out)
    with zipfile.ZipFile(archive) as z:
        for name in SHA256:
            with z.open(f"ml-100k/{name}") as src, open(target / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return target


def locate(opts: MovieLensOptions) -> Path:
    """The folder holding u.data, u.item and u.user: --data-dir, else a cached or fresh download."""
    folder = Path(opts.data_dir).expanduser() if opts.data_dir else shared_dir() / "data" / "movielens-100k"
    if _has_files(folder):
        return folder
    cache = Path(opts.cache_dir).expanduser() if opts.cache_dir else default_cache_dir()
    if _has_files(cache / "ml-100k"):
        return cache / "ml-100k"
    try:
        return download(opts.url, cache)
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise SourceError(
            f"MovieLens-100K not found: {folder} lacks {sorted(SHA256)}, and downloading {opts.url} into "
            f"{cache} failed ({type(e).__name__}: {e}). Pass --data-dir DIR (or set GREC_SHARED) to a folder "
            "holding the files") from None


def _read(spark: SparkSession, path: Path, schema: T.StructType, sep: str, encoding: str = "UTF-8") -> DataFrame:
    # quote is off: titles hold quotes that are not CSV quoting.
    return spark.read.csv(to_uri(str(path)), schema=schema, sep=sep, encoding=encoding, quote="\u0000",
                          mode="FAILFAST")


def items_table(raw_items: DataFrame) -> DataFrame:
    """item_id, domain (group of the first listed genre), features: genre multi-hot, release year as
    (year - 1900) / 100 (0 when missing) and a year-missing flag."""
    flags = [F.col(f"g{i}") for i in range(len(GENRES))]
    first = F.array_position(F.array(*flags), 1)  # 1-based; 0 when no genre is set
    groups = F.array(*(F.lit(GENRE_GROUPS[g]) for g in GENRES))
    domain = F.when(first > 0, F.element_at(groups, first.cast("int"))).otherwise(F.lit(NO_GENRE))
    year = F.substring_index(F.col("release_date"), "-", -1).try_cast("int")
    features = [*flags, (year - 1900) / 100.0, F.when(year.isNull(), 1.0).otherwise(0.0)]
    return raw_items.select(ITEM_ID, domain.alias(DOMAIN), features_array(features).alias(FEATURES_COL))


def users_table(raw_users: DataFrame) -> DataFrame:
    """user_id, features (age bucket, gender and occupation one-hots)."""
    age = F.col("age").try_cast("int")
    bucket = F.lit(None).cast("string")
    for name, low in AGE_BUCKETS:  # ascending, so the last bucket whose floor the age reaches wins
        bucket = F.when(age >= low, F.lit(name)).otherwise(bucket)
    features = [*one_hot(bucket, [n for n, _ in AGE_BUCKETS]), *one_hot(F.col("gender"), GENDERS),
                *one_hot(F.col("occupation"), OCCUPATIONS)]
    return raw_users.select(USER_ID, features_array(features).alias(FEATURES_COL))


def interactions_table(ratings: DataFrame, items: DataFrame) -> DataFrame:
    domains = F.broadcast(items.select(ITEM_ID, DOMAIN))
    return (ratings.join(domains, ITEM_ID, "left")
            .select(USER_ID, ITEM_ID, TS, DOMAIN,
                    (F.col("rating") >= 4).cast("int").alias("like"),
                    (F.col("rating") == 5).cast("int").alias("love"),
                    F.col("rating").cast("double").alias("rating"),
                    F.lit("u.data").alias(SOURCE_COL)))


def item_titles(spark: SparkSession, opts: MovieLensOptions = MovieLensOptions()) -> DataFrame:
    """(item_id, title) from u.item, for people reading the lake (the tables keep ids only).

    Titles only label results, so the files are not checked against the published sha256.
    """
    return _read(spark, locate(opts) / "u.item", _ITEMS, "|", "ISO-8859-1").select(ITEM_ID, "title")


def load(spark: SparkSession, opts: MovieLensOptions) -> SourceData:
    folder = locate(opts)
    if not opts.no_verify:
        verify(folder)
    items = items_table(_read(spark, folder / "u.item", _ITEMS, "|", "ISO-8859-1"))
    users = users_table(_read(spark, folder / "u.user", _USERS, "|"))
    ratings = _read(spark, folder / "u.data", _RATINGS, "\t")
    return SourceData(
        name=NAME, description=f"real MovieLens-100K (GroupLens) from {folder}",
        interactions=interactions_table(ratings, items), labels=["like", "love"], positive_label="like",
        numeric=["rating"], ts_unit=TsUnit.SECONDS, users=users, items=items,
        user_feature_names=list(USER_FEATURES), item_feature_names=list(ITEM_FEATURES))
