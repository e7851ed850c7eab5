"""grec's trainer: snapshot reader, models, GradNorm, metrics, the training loop and its CLI.

Runs without a JVM: Delta snapshots are resolved with delta-rs and read as Parquet.
"""
