"""The floor for bench/pages.py: a bare Flask app that renders a 25-row table with Jinja."""

from flask import Flask, render_template_string

app = Flask(__name__)
ROWS = [
    {"id": i, "name": f"Product {i}", "plate": f"a{i:05x}", "status": "active"} for i in range(25)
]
PAGE = """<!doctype html><html><head><title>Bare</title></head><body><table>
<thead><tr><th>#</th><th>Name</th><th>Plate</th><th>Status</th></tr></thead><tbody>
{% for r in rows %}<tr><td>{{ r.id }}</td><td>{{ r.name }}</td><td><code>{{ r.plate }}</code></td>
<td>{{ r.status }}</td></tr>{% endfor %}</tbody></table></body></html>"""


@app.get("/")
def index():
    return render_template_string(PAGE, rows=ROWS)
