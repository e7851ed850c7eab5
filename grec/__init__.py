"""The application: the `grec` console command (grec.cli), which mounts the ETL jobs, training,
comparison and `grec jars`, and the end-to-end demo (grec.demo). The libraries it drives are etl/,
training/ and schemas/."""
