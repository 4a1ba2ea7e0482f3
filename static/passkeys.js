"use strict";
// Passkeys: the browser's WebAuthn prompt, then an ordinary form post. No inline script (CSP script-src 'self').
// Markup: a <form> holding <input type="hidden" data-passkey-response>, a role=status [data-passkey-status],
// and <button type="button" data-passkey="register|authenticate" data-passkey-options="ID" hidden data-needs-js>,
// where ID names a <script type="application/json"> with the server's options. [data-no-js] notes
// ("Passkeys need JavaScript") are hidden once passkeys can work. Messages may be overridden (translated) by
// data-msg-waiting|cancelled|exists|failed on the status element.
(() => {
  const MESSAGES = {
    waiting: "Waiting for your passkey…",
    cancelled: "The passkey request was cancelled or timed out. Try again, or use another way.",
    exists: "This device already has a passkey for your account.",
    failed: "The passkey didn't work. Try again, or use another way.",
  };
  const supported = () =>
    typeof window.PublicKeyCredential === "function" &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
  let pending = null; // the conditional (autofill) request, aborted before a button's own request

  function reveal() {
    if (!supported()) return;
    if (pending) { pending.abort(); pending = null; } // a swap may have replaced the options it was started with
    document.querySelectorAll("[data-needs-js][hidden]").forEach((el) => { el.hidden = false; });
    document.querySelectorAll("[data-no-js]").forEach((el) => { el.hidden = true; });
    startConditional();
  }

  function say(form, key, name) {
    const status = form.querySelector("[data-passkey-status]");
    if (!status) return;
    status.textContent = status.dataset["msg" + key[0].toUpperCase() + key.slice(1)] || MESSAGES[key];
    status.dataset.state = name || key;
  }

  function options(button) {
    const block = document.getElementById(button.dataset.passkeyOptions || "");
    return block ? JSON.parse(block.textContent) : null;
  }

  function submit(form, credential) {
    form.querySelector("input[data-passkey-response]").value = JSON.stringify(credential.toJSON());
    form.requestSubmit(); // fires "submit", so an hx-post form goes through htmx and a plain one posts
  }

  async function ceremony(button) {
    const form = button.closest("form");
    const json = options(button);
    if (!form || !json) return;
    if (pending) pending.abort();
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    say(form, "waiting");
    try {
      const credential = button.dataset.passkey === "register"
        ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(json) })
        : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(json) });
      submit(form, credential);
    } catch (error) {
      // The button stays: pressing it again is the retry, and every other way in is untouched.
      const key = error.name === "InvalidStateError" ? "exists" : error.name === "NotAllowedError" ? "cancelled" : "failed";
      say(form, key, error.name);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  // Autofill sign-in: the email field offers passkeys; choosing one signs in with the conditional button's form.
  async function startConditional() {
    const button = document.querySelector('[data-passkey="authenticate"][data-passkey-conditional]');
    if (pending || !button || !document.querySelector('input[autocomplete~="webauthn"]')) return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable?.())) return;
    const json = options(button);
    if (!json || pending) return;
    pending = new AbortController();
    const signal = pending.signal;
    try {
      const credential = await navigator.credentials.get({
        mediation: "conditional",
        publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(json),
        signal,
      });
      submit(button.closest("form"), credential);
    } catch (error) {
      if (error.name !== "AbortError") say(button.closest("form"), "failed", error.name);
    } finally {
      if (pending && pending.signal === signal) pending = null;
    }
  }

  // Delegation: buttons swapped in by htmx work with no re-binding.
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[data-passkey]");
    if (button && supported()) ceremony(button);
  });
  document.addEventListener("DOMContentLoaded", reveal);
  document.addEventListener("htmx:after:swap", reveal);
})();
