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

// The site menu folds behind a button on narrow screens (CSS shows the button only there).
// Without JavaScript the button stays hidden and the menu open.
(() => {
  const header = document.querySelector(".site-header");
  const toggle = header && header.querySelector(".nav-toggle");
  if (!toggle) return;
  const fold = (folded) => {
    header.classList.toggle("nav-folded", folded);
    toggle.setAttribute("aria-expanded", String(!folded));
  };
  fold(true);
  toggle.hidden = false;
  toggle.addEventListener("click", () => fold(toggle.getAttribute("aria-expanded") === "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true" && header.contains(document.activeElement)) {
      fold(true);
      toggle.focus();
    }
  });
})();
