"""The one place that decides between a whole page and a fragment for HTMX."""

from flask import current_app, make_response, redirect, request


def is_htmx() -> bool:
    # A history restore asks for the whole page: the browser has no DOM to swap into.
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_block(template_name: str, block: str, **context) -> str:
    """Render one named block of a template: fragments come from the page's own template."""
    env = current_app.jinja_env
    template = env.get_template(template_name)
    current_app.update_template_context(context)
    return "".join(template.blocks[block](template.new_context(context)))


def render(template_name: str, block: str | None = None, status: int = 200, **context):
    """The page, or only ``block`` of it for an HTMX request."""
    from flask import render_template

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
