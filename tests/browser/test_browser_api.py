"""The API's references in a browser: Swagger UI (vendored) draws every call of the document
under the registry's Content-Security-Policy, with no violation reported; the page without
JavaScript lists the same calls."""

from playwright.sync_api import expect

from registry.api.spec import ENDPOINTS


def test_swagger_ui_draws_the_document_under_the_csp(live_server, page):
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text
            or "Refused to" in m.text else None)  # fmt: skip
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server}/api/v1/docs/try")
        calls = page.locator(".swagger-ui .opblock")
        expect(calls).to_have_count(len(ENDPOINTS), timeout=20_000)
        expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/products/{plate}/changes")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert refused == []


def test_the_reference_page_lists_every_call_without_javascript(live_server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server}/api/v1/docs")
    expect(page.locator("section.api-call")).to_have_count(len(ENDPOINTS))
    context.close()
