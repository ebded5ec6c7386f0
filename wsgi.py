"""Production entry point: ``gunicorn wsgi:app``.

Each process also runs the background work (mail sender, NATS relay and bridge) unless
``REGISTRY_RUN_BACKGROUND=false``: then web processes only serve, and ``flask --app registry
worker`` runs the background work in processes of its own (commits wake it through PostgreSQL).
"""

from registry import create_app, logs, wiring

app = create_app()
logs.configure(app)
if app.config["RUN_BACKGROUND"]:
    wiring.start(app)
