"""The time split of the interactions, shared by the ETL (which writes it) and the trainer (which
reads it): training rows build the graph and train the models, the validation period right after
them selects configurations and stops training early, the evaluation period is scored once.

An evaluation below MIN_EVAL_ROWS rows or MIN_EVAL_USERS distinct users is too small to rank
models by: the standard error of an AUC on a few hundred rows is several points, and a handful of
users makes every figure one user's taste. Jobs and reports flag it loudly.
"""
TRAIN = "train"
VAL = "val"
EVAL = "eval"
MIN_EVAL_ROWS = 1000
MIN_EVAL_USERS = 50
