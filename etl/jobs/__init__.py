"""Stage entry points: `spark-submit etl/jobs/<stage>.py --lake PATH [--run-id R] [flags]`.

Each stage module defines `add_arguments(parser)` and `run(args) -> int`; `grec.cli` mounts the same
modules under the `grec` console command. `shell` is the job shell every entry point runs in
(common flags, error handling, exit codes); `stage_inputs` holds what the stages after ingest share
(labels, the split, upstream table properties at the run's own versions).
"""
