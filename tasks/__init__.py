"""Prefect tasks: thin wrappers running one core step (``courier.jobs``) over a batch.

They carry the orchestration policy — retries, timeouts, logging — and nothing else.
Per-invoice state lives in the ledger, not in task runs.
"""
