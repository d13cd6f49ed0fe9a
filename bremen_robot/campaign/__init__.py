"""Deployment campaigns: collect -> ingest -> train -> register -> evaluate -> approve -> deploy."""
