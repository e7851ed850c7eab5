"""grec's Spark side: sources, pure transforms, quality checks, lake I/O and stage jobs."""
