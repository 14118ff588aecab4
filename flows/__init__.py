"""Prefect flows: they put the steps in order and do nothing else."""
