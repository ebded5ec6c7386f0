// The API's interactive reference: Swagger UI on the registry's own OpenAPI document.
// Loaded by templates/api/try.html; no inline script, as the Content-Security-Policy asks.
document.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.spec,
    domNode: root,
    deepLinking: true,
    tryItOutEnabled: false,
  });
});
