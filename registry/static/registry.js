// Forms marked data-submit-once disable their buttons once sent, so a double click sends one
// request (the server also refuses a second send of the same form: its one-time key).
// HTMX forms use hx-disabled-elt instead.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("[data-submit-once]") || form.hasAttribute("hx-post")) return;
  // After this tick, so the clicked button's own name and value are still sent.
  setTimeout(() => {
    for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    }
  });
});
