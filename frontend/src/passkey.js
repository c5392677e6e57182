// Passkeys: runs the browser's side of a WebAuthn ceremony the daemon began. In: the daemon's
// challenge as JSON text ({challenge_id, options: {publicKey}}, binary fields in base64url).
// Out: the JSON text of the answer to send back. Bundled by wasm-bindgen as a snippet.
const bin = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const txt = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

// `name` given: registers a passkey ({challenge_id, name, credential}); otherwise signs in
// ({challenge_id, credential}).
export async function passkey_answer(challenge, name) {
  const { challenge_id, options } = JSON.parse(challenge);
  const o = options.publicKey;
  o.challenge = bin(o.challenge);
  for (const c of o.excludeCredentials || o.allowCredentials || []) c.id = bin(c.id);
  const credential = { type: "public-key", extensions: {} };
  let r;
  if (name !== undefined) {
    o.user.id = bin(o.user.id);
    const c = await navigator.credentials.create({ publicKey: o });
    r = c.response;
    Object.assign(credential, { id: c.id, rawId: txt(c.rawId), extensions: c.getClientExtensionResults() });
    credential.response = {
      attestationObject: txt(r.attestationObject), clientDataJSON: txt(r.clientDataJSON),
      transports: r.getTransports ? r.getTransports() : [],
    };
    return JSON.stringify({ challenge_id, name, credential });
  }
  const c = await navigator.credentials.get({ publicKey: o });
  r = c.response;
  Object.assign(credential, { id: c.id, rawId: txt(c.rawId), extensions: c.getClientExtensionResults() });
  credential.response = {
    authenticatorData: txt(r.authenticatorData), clientDataJSON: txt(r.clientDataJSON),
    signature: txt(r.signature), userHandle: r.userHandle ? txt(r.userHandle) : null,
  };
  return JSON.stringify({ challenge_id, credential });
}
