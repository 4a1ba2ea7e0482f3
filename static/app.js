"use strict";
// Dialogs only. Each <dialog data-modal> opens as a real modal: the browser keeps focus inside, Escape
// closes it and focus returns to where it was. A dialog that is a page of its own leaves on close.
function openDialogs() {
  document.querySelectorAll("dialog[data-modal]:not([data-ready])").forEach((dialog) => {
    dialog.dataset.ready = "1";
    if (dialog.open) dialog.close();
    dialog.addEventListener("close", () => {
      if (dialog.open) return;
      if (dialog.dataset.cancel) location.assign(dialog.dataset.cancel); else dialog.remove();
    });
    dialog.showModal();
  });
}
document.addEventListener("DOMContentLoaded", openDialogs);
document.addEventListener("htmx:after:settle", openDialogs);
// A request sent from a dialog whose answer was swapped elsewhere (the resumed action) is done with it.
document.addEventListener("htmx:after:swap", (event) => {
  const dialog = event.target.closest && event.target.closest("dialog[open]");
  const target = event.detail && event.detail.ctx && event.detail.ctx.target;
  const into = typeof target === "string" ? document.querySelector(target) : target;
  if (dialog && into && !dialog.parentElement.contains(into)) dialog.close();
});
// Tab and Shift+Tab wrap around inside an open modal dialog instead of leaving the page for the browser's
// own controls (which, for a keyboard user, looks like focus was lost).
document.addEventListener("keydown", (event) => {
  if (event.key !== "Tab") return;
  const dialog = document.querySelector("dialog[data-modal][open]");
  if (!dialog || !dialog.matches(":modal")) return;
  const items = [...dialog.querySelectorAll(
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled])"
  )].filter((el) => el.getClientRects().length > 0);
  if (items.length === 0) return;
  const first = items[0], last = items[items.length - 1], inside = dialog.contains(document.activeElement);
  if (event.shiftKey && (!inside || document.activeElement === first)) { last.focus(); event.preventDefault(); }
  else if (!event.shiftKey && (!inside || document.activeElement === last)) { first.focus(); event.preventDefault(); }
});
