"""Batch animation of whole libraries on Ray: job specs and items (`jobs`), the SQLite manifest that
makes runs resumable (`manifest`), and the runner with retries and atomic outputs (`runner`)."""
