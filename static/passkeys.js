// The portal's passkeys, in the browser: adding one on /account, signing in with one on
// /login (the button, and the username field's autofill), and the second step. No library:
// WebAuthn's JSON helpers where the browser has them, base64url by hand where it does not.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  const b64u = {
    dec: (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer,
    enc: (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
  };
  const creation = (pk) => typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function"
    ? PublicKeyCredential.parseCreationOptionsFromJSON(pk)
    : { ...pk, challenge: b64u.dec(pk.challenge), user: { ...pk.user, id: b64u.dec(pk.user.id) },
        excludeCredentials: (pk.excludeCredentials || []).map((c) => ({ ...c, id: b64u.dec(c.id) })) };
  const request = (pk) => typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function"
    ? PublicKeyCredential.parseRequestOptionsFromJSON(pk)
    : { ...pk, challenge: b64u.dec(pk.challenge),
        allowCredentials: (pk.allowCredentials || []).map((c) => ({ ...c, id: b64u.dec(c.id) })) };
  const toJSON = (c) => {
    if (typeof c.toJSON === "function") return c.toJSON();
    const r = c.response;
    const response = r.attestationObject
      ? { attestationObject: b64u.enc(r.attestationObject), clientDataJSON: b64u.enc(r.clientDataJSON),
          transports: r.getTransports ? r.getTransports() : [] }
      : { authenticatorData: b64u.enc(r.authenticatorData), clientDataJSON: b64u.enc(r.clientDataJSON),
          signature: b64u.enc(r.signature), userHandle: r.userHandle ? b64u.enc(r.userHandle) : null };
    return { id: c.id, rawId: b64u.enc(c.rawId), type: c.type, response,
             clientExtensionResults: c.getClientExtensionResults() };
  };

  const post = async (url, body) => {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(json.error || "Something went wrong. Please try again.");
    return json;
  };
  const hidden = (form, name) => {
    const field = form && form.querySelector(`input[name="${name}"]`);
    return field ? field.value : undefined;
  };
  const say = (text) => {
    const p = document.querySelector("[data-passkey-error]");
    if (!p) return;
    p.textContent = text;
    p.hidden = !text;
  };
  // A cancelled or timed-out prompt is not worth an error.
  const quiet = (e) => e && (e.name === "NotAllowedError" || e.name === "AbortError");

  // /login: the button, and autofill in the username field (conditional mediation).
  const signIn = document.querySelector('[data-passkey="sign-in"]');
  if (signIn) {
    const form = document.querySelector('form[action="/login"]');
    let autofill = null;
    const finish = async (credential) => {
      const remember = form && form.querySelector('input[name="remember"]');
      const done = await post("/login/passkey", {
        credential: toJSON(credential), remember: !!(remember && remember.checked),
        next: hidden(form, "next"), rd: hidden(form, "rd"),
      });
      window.location.assign(done.redirect);
    };
    const conditional = async () => {
      if (!PublicKeyCredential.isConditionalMediationAvailable || !(await PublicKeyCredential.isConditionalMediationAvailable())) return;
      autofill = new AbortController();
      try {
        const options = await post("/login/passkey/options");
        const credential = await navigator.credentials.get({
          publicKey: request(options.publicKey), mediation: "conditional", signal: autofill.signal });
        await finish(credential);
      } catch (e) {
        if (!quiet(e)) say(e.message);
      }
    };
    signIn.hidden = false;
    signIn.addEventListener("click", async () => {
      say("");
      if (autofill) autofill.abort();
      try {
        const options = await post("/login/passkey/options");
        const credential = await navigator.credentials.get({ publicKey: request(options.publicKey) });
        await finish(credential);
      } catch (e) {
        if (!quiet(e)) say(e.message);
        conditional();
      }
    });
    conditional();
  }

  // The second step: a passkey of the person signing in.
  const step = document.querySelector('[data-passkey="second-factor"]');
  if (step) {
    const form = document.querySelector('form[action="/login/second-factor"]');
    step.hidden = false;
    step.addEventListener("click", async () => {
      say("");
      try {
        const options = await post("/login/second-factor/passkey/options");
        const credential = await navigator.credentials.get({ publicKey: request(options.publicKey) });
        const done = await post("/login/second-factor/passkey", {
          credential: toJSON(credential), next: hidden(form, "next"), rd: hidden(form, "rd") });
        window.location.assign(done.redirect);
      } catch (e) {
        if (!quiet(e)) say(e.message);
      }
    });
  }

  // /account: add a passkey, and show the recovery codes of a first second factor once.
  const add = document.getElementById("passkey-add");
  if (add) {
    add.hidden = false;
    add.addEventListener("submit", async (event) => {
      event.preventDefault();
      say("");
      try {
        const options = await post("/account/passkeys/options");
        const credential = await navigator.credentials.create({ publicKey: creation(options.publicKey) });
        const done = await post("/account/passkeys", {
          credential: toJSON(credential), name: add.querySelector('input[name="name"]').value });
        const codes = done.recovery_codes || [];
        if (codes.length === 0) {
          window.location.assign("/account");
          return;
        }
        const list = document.getElementById("recovery-codes");
        for (const code of codes) {
          const li = document.createElement("li");
          const c = document.createElement("code");
          c.textContent = code;
          li.appendChild(c);
          list.appendChild(li);
        }
        add.hidden = true;
        document.getElementById("passkey-codes").hidden = false;
      } catch (e) {
        if (!quiet(e)) say(e.message);
      }
    });
  }
})();
