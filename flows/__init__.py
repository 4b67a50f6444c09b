"""Prefect flows around the nampo library: scheduled monitoring and on-demand backfills.

The library (``nampo``) never imports Prefect; these modules are thin wrappers that turn
typed parameters into library calls and each unit of work into a Prefect task run (so the
UI shows every unit's state, retries and failures).
"""
