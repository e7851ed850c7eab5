"""Stage entry points: `spark-submit etl/jobs/<stage>.py --lake PATH [--run-id R] [flags]`.

Each module defines `add_arguments(parser)` and `run(args) -> int`; `etl.cli` mounts the same
modules under the `grec` console command.
"""
