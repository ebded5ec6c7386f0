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

// Product form: a live character counter beside a field with data-counter (the server renders it
// too, and refuses what is too long with the text intact: no maxlength cuts it). The visible
// text follows every keystroke; screen readers hear it only when the limit is crossed.
document.addEventListener("input", (event) => {
  const field = event.target;
  const id = field.dataset && field.dataset.counter;
  const counter = id && document.getElementById(id);
  if (!counter) return;
  const max = Number(counter.dataset.max);
  const count = [...field.value].length; // characters, as the server counts them
  const over = count > max;
  const wasOver = counter.classList.contains("over");
  counter.textContent = `${count} of ${max} characters${over ? `: ${count - max} too many` : ""}`;
  counter.classList.toggle("over", over);
  if (over !== wasOver) {
    const live = document.getElementById(`${id}-live`);
    if (live) live.textContent = over ? `Over the limit of ${max} characters.` : `Within the limit of ${max} characters again.`;
  }
});

// Parts that need JavaScript (the people search) are hidden in the HTML and shown here, also in
// content HTMX swaps in later.
const showEnhanced = (root) => {
  for (const element of root.querySelectorAll("[data-people-search][hidden]")) element.hidden = false;
};
showEnhanced(document);
document.addEventListener("htmx:load", (event) => showEnhanced(event.target));

// After HTMX swaps in a form's next step (a summary, the errors), focus goes to it: the button
// that was pressed is gone, and a keyboard or screen-reader user would be left at the top.
document.addEventListener("htmx:afterSettle", (event) => {
  const target = event.detail && event.detail.elt;
  const spot = target && (target.matches("[data-focus]") ? target : target.querySelector("[data-focus]"));
  if (spot) spot.focus();
});

// People search: Enter in the search box must not send the product form.
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target.matches("[data-people-search] input[type=search]")) event.preventDefault();
});

// Choosing a person fills that contact's first name, last name and email; each field's inline
// validation runs as if typed. Someone new can still be typed in by hand.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-person]");
  if (!button) return;
  const group = button.dataset.contact;
  const values = { first_name: button.dataset.firstName, last_name: button.dataset.lastName, email: button.dataset.email };
  for (const [part, value] of Object.entries(values)) {
    const input = document.getElementById(`${group}-${part}`);
    if (!input) continue;
    input.value = value;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }
  const results = button.closest(".people-results");
  const search = document.getElementById(`${group}-find`);
  if (search) search.value = "";
  if (results) results.textContent = `Filled in ${values.first_name} ${values.last_name}, ${values.email}.`;
  const first = document.getElementById(`${group}-first_name`);
  if (first) first.focus();
});

// The review queue: the decided item leaves (or, when another admin was first, says so), and the
// button that was pressed is gone with it; focus goes to what happened instead of the page's top,
// and Tab goes on from there. Each message takes focus once; the queue's own polling never does.
document.addEventListener("htmx:afterSettle", () => {
  const message = document.querySelector("#queue [data-focus-once], #queue-notice [data-focus-once]");
  if (!message) return;
  message.removeAttribute("data-focus-once");
  message.focus();
});
