"""Pure `DataFrame -> DataFrame` transforms; job shells in etl/jobs do the reading and writing."""
