"""`grec`: the console command wrapping the same stage jobs as spark-submit, plus training.

    grec etl run --lake lake --source movielens-100k      # the whole pipeline
    grec etl ingest --lake lake --source synthetic --rows 1000000
    grec swing --input logs.parquet --user-col uid --item-col iid --output swing/
    grec train --lake lake --run R --model e2e_grec --out out/
    grec demo --lake lake
    spark-submit --jars "$(grec jars --sep ,)" ...        # the JARs a Spark application needs

Only the module of the command given is imported, so `grec train` and `grec jars` never start a
JVM, and `grec --help` imports nothing beyond the standard library (it works where only the wheel is
installed).
"""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from etl.logs import configure_logging

# command words -> (module with add_arguments/run, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("demo",): ("grec.demo", "run the whole pipeline and a short training on the embedded default"),
    ("etl", "run"): ("etl.jobs.pipeline", "run every ETL stage in order under one run id"),
    ("etl", "ingest"): ("etl.jobs.ingest", "source -> bronze.interactions/users/items (+ quarantine)"),
    ("etl", "swing"): ("etl.jobs.swing", "bronze positives -> silver.swing_i2i"),
    ("etl", "graph"): ("etl.jobs.graph", "-> gold.nodes, gold.edges, gold.graph_stats"),
    ("etl", "neighbors"): ("etl.jobs.neighbors", "-> gold.neighbors (importance-sampled, p ∝ w^β)"),
    ("etl", "examples"): ("etl.jobs.examples", "-> gold.examples (one row per impression; --neighbor-arrays "
                                               "adds both nodes' features and neighbour lists)"),
    ("etl", "macro"): ("etl.jobs.macro", "-> gold.macro (MGOE macro-graph features)"),
    ("swing",): ("etl.jobs.swing", "standalone Swing on any file (--input ... --output ...)"),
    ("data", "synthetic"): ("etl.jobs.synthetic_data", "write synthetic interaction logs in contract form"),
    ("runs",): ("etl.jobs.runs", "list the run manifest (_runs) of a lake"),
    ("jars",): ("etl.jars", "print the JARs Spark needs (grec-jvm.jar, Delta's) for spark-submit --jars"),
    ("train",): ("training.cli", "train and evaluate a model on a pinned snapshot"),
    ("compare",): ("training.compare", "train and evaluate several models x seeds on one snapshot; comparison tables"),
}


def _usage() -> str:
    width = max(len(" ".join(k)) for k in COMMANDS)
    rows = [f"  grec {' '.join(k):<{width}}  {h}" for k, (_, h) in COMMANDS.items()]
    return "usage: grec <command> [flags]   (grec <command> --help for its flags)\n\ncommands:\n" + "\n".join(rows)


def _resolve(argv: Sequence[str]) -> tuple[Optional[tuple[str, ...]], list[str]]:
    for n in (2, 1):
        key = tuple(argv[:n])
        if key in COMMANDS:
            return key, list(argv[n:])
    return None, list(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    key, rest = _resolve(argv)
    if key is None:
        print(_usage(), file=sys.stdout if argv[:1] in (["-h"], ["--help"], []) else sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    module = importlib.import_module(COMMANDS[key][0])
    if hasattr(module, "main"):  # its own entry point: training needs no Spark, so skips etl.jobs.shell
        return module.main(rest)
    from etl.jobs.shell import job_main

    parser_prog = "grec " + " ".join(key)
    return job_main(module.add_arguments, module.run, rest, description=module.__doc__, prog=parser_prog)


if __name__ == "__main__":
    raise SystemExit(main())
