"""The values of gold.examples' `split` column and how large an evaluation must be to be trusted.

Shared by the ETL (which writes the split) and the trainer (which reads it); pure Python so the
trainer imports it without Spark.

Rows are split by time: training days first, then a validation period (model selection, early
stopping), then the evaluation period (the reported figures). The graph is built from training rows
only, so validation sees the graph exactly as evaluation does.

MIN_EVAL_ROWS / MIN_EVAL_USERS: an evaluation below either is too small to trust. A metric averaged
over a few hundred rows or a handful of users swings by more than the differences between models
it is meant to rank (a fixed "last N days" split once kept 130 rows from 4 users of a 20-year log),
so the ETL warns and the trainer flags it at the top of its reports.
"""
from __future__ import annotations

TRAIN = "train"
VAL = "val"
EVAL = "eval"
SPLITS = (TRAIN, VAL, EVAL)

MIN_EVAL_ROWS = 1000
MIN_EVAL_USERS = 50
