"use strict";
// Backup codes: "Copy backup codes" and "Print backup codes", which need JavaScript, so they start hidden
// and are shown here. Delegated, so codes swapped in by htmx work too. No inline script (CSP).
(() => {
  const reveal = () => {
    document.querySelectorAll("[data-print-codes][hidden]").forEach((b) => { b.hidden = false; });
    if (!navigator.clipboard) return; // the Clipboard API needs a secure context
    document.querySelectorAll("[data-copy-codes][hidden]").forEach((b) => { b.hidden = false; });
  };
  document.addEventListener("DOMContentLoaded", reveal);
  document.addEventListener("htmx:after:settle", reveal);
  document.addEventListener("click", async (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (target && target.closest("[data-print-codes]")) { window.print(); return; }
    const copy = target && target.closest("[data-copy-codes]");
    if (!copy) return;
    const list = document.getElementById(copy.dataset.copyCodes);
    const status = document.getElementById("codes-copied");
    const codes = [...list.querySelectorAll("code")].map((c) => c.textContent.trim()).join("\n");
    try {
      await navigator.clipboard.writeText(codes + "\n");
      if (status) status.textContent = "Copied the backup codes.";
    } catch {
      if (status) status.textContent = "Couldn't copy. Select the codes and copy them, or download them.";
    }
  });
})();
