"""Running the pipeline: units, the plan, the schedule, the work of a unit, the executor,
monitoring and the Dask workers (docs/run.md)."""
