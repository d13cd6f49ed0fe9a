"""``bremen console``: a local, read-only web view of a campaign workspace (docs/console.md)."""
