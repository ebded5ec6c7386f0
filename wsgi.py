"""Production entry point: ``gunicorn wsgi:app``. Starts this process's background work."""

from registry import background, create_app

app = create_app()
background.start(app)
