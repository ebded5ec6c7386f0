"""The one place that decides between a whole page and a fragment for HTMX."""

import weakref

from flask import current_app, make_response, redirect, render_template, request
from jinja2 import Environment, Template, nodes


def is_htmx() -> bool:
    # A history restore asks for the whole page: the browser has no DOM to swap into.
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


# Per page template, a template made of only its top-level imports and macros.
_preambles: weakref.WeakKeyDictionary[Template, Template] = weakref.WeakKeyDictionary()


def _preamble(env: Environment, template: Template) -> Template:
    """The page's top-level ``{% from/import %}`` and ``{% macro %}``, as a template of their own.

    Jinja runs them in the page's root render function only, so a block rendered alone would see
    them undefined; rendering the whole page to get them would run ``base.html`` too.
    """
    preamble = _preambles.get(template)
    if preamble is None:
        source, filename, _ = env.loader.get_source(env, template.name)
        ast = env.parse(source, template.name, filename)
        kept = [n for n in ast.body if isinstance(n, nodes.Import | nodes.FromImport | nodes.Macro)]
        preamble = _preambles[template] = env.from_string(nodes.Template(kept, lineno=1))
    return preamble


def render_block(template_name: str, block: str, **context) -> str:
    """Render one named block of a template: fragments come from the page's own template."""
    env = current_app.jinja_env
    template = env.get_template(template_name)
    current_app.update_template_context(context)
    preamble = _preamble(env, template)
    preamble_context = preamble.new_context(context)
    for _ in preamble.root_render_func(preamble_context):
        pass
    block_context = template.new_context({**context, **preamble_context.vars})
    return "".join(template.blocks[block](block_context))


def render(template_name: str, block: str | None = None, status: int = 200, **context):
    """The page, or only ``block`` of it for an HTMX request."""

    if block and is_htmx():
        body = render_block(template_name, block, **context)
    else:
        body = render_template(template_name, **context)
    return make_response(body, status)


def redirect_to(url: str):
    """303 for a browser; HX-Redirect for HTMX, which would otherwise swap the target page in."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


def add_vary(response):
    response.vary.add("HX-Request")
    return response
