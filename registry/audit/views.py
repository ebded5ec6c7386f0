from . import bp  # noqa: F401  (the audit page is built in views; see registry/audit)
