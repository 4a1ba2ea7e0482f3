"use strict";
// The session timeout warning (WCAG 2.2.1 Timing Adjustable). The page says on <body> how many seconds are
// left before the session ends for inactivity (data-idle-left) and in any case (data-session-left); this
// opens the "Are you still there?" alert dialog data-idle-warning seconds before the first of them.
// "Stay signed in" (or Escape) posts to the extend route and starts the idle clock again; the maximum
// session length can't be extended, so that warning only informs. Without JavaScript nothing happens.
(() => {
  const body = document.body;
  if (!body || !body.dataset.idleLeft) return;
  const seconds = (name) => Number(body.dataset[name]) * 1000;
  const dialog = document.getElementById("timeout-warning");
  const form = dialog && dialog.querySelector("form[data-timeout-extend]");
  if (!dialog || !form) return;
  const started = Date.now();
  let idleEnds = started + seconds("idleLeft");
  const sessionEnds = started + seconds("sessionLeft");
  const warning = seconds("idleWarning");
  let acknowledged = false; // the maximum-length warning was read; it only comes back as "signed out"
  let over = false; // "You've been signed out" was closed: it does not open again
  let state = "";

  function show(next) {
    if (state === next && dialog.open) return;
    state = next;
    dialog.querySelectorAll("[data-timeout-state]").forEach((part) => {
      part.hidden = part.dataset.timeoutState !== next;
    });
    dialog.setAttribute("aria-labelledby", `timeout-${next}-title`);
    dialog.setAttribute("aria-describedby", `timeout-${next}-text`);
    if (!dialog.open) dialog.showModal();
    const first = dialog.querySelector(`[data-timeout-state="${next}"] button, [data-timeout-state="${next}"] a`);
    if (first) first.focus();
  }

  function hide() {
    state = "";
    if (dialog.open) dialog.close();
  }

  function check() {
    const now = Date.now(), ends = Math.min(idleEnds, sessionEnds);
    if (now >= ends) { if (!over) show("ended"); }
    else if (sessionEnds <= idleEnds && sessionEnds - now <= warning) { if (!acknowledged) show("absolute"); }
    else if (idleEnds - now <= warning) show("idle");
    else if (state === "idle") hide();
  }

  async function extend() {
    const token = form.querySelector("input[name=csrf_token]").value;
    let response = null;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-CSRF-Token": token, "X-Requested-With": "fetch" },
        credentials: "same-origin",
        redirect: "manual",
      });
    } catch (error) {
      response = null;
    }
    if (response && response.status === 204) {
      idleEnds = Date.now() + seconds("idleTimeout");
      hide();
    } else if (Date.now() >= Math.min(idleEnds, sessionEnds) || (response && response.type === "opaqueredirect")) {
      show("ended"); // the server had already signed this session out
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); extend(); });
  dialog.querySelector("[data-timeout-close]").addEventListener("click", () => { acknowledged = true; hide(); });
  // Escape means "I'm here" while the idle warning shows; it closes the other two states.
  dialog.addEventListener("cancel", (event) => {
    if (state === "idle") { event.preventDefault(); extend(); }
    else if (state === "absolute") acknowledged = true;
  });
  dialog.addEventListener("close", () => {
    if (state === "absolute") acknowledged = true;
    if (state === "ended") over = true;
    state = "";
  });
  // Any answer from the server refreshed the idle stamp unless it was fresh; at least `renewed` is left.
  document.addEventListener("htmx:after:request", () => {
    idleEnds = Math.max(idleEnds, Date.now() + seconds("idleRenewed"));
  });
  setInterval(check, 1000);
  check();
})();
