//! Passkeys (WebAuthn by webauthn-rs): registering several, naming and deleting them, and
//! signing in with one, in place of the password (a discoverable credential with user
//! verification: both factors at once) or as the second factor after it.
//!
//! Ceremonies are held here, in memory, for two minutes and used once: a registration belongs to
//! the session that began it, a sign-in challenge to whoever answers it first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use nuage_shared::{
    NewPasskey, PasskeyAssertion, PasskeyChallenge, PasskeyInfo, RegisteredPasskey,
};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::{totp, Actor, App, AppError};
use crate::config::Settings;
use crate::db::{self, passkeys, Refusal};

/// How long a ceremony waits for the browser's answer.
pub const CEREMONY_TTL: Duration = Duration::from_secs(120);
/// Sign-in challenges waiting at once, in all and per client (an address, or an IPv6 /64): an
/// anonymous flood fills its own share first. Registrations are counted apart, per user, so that
/// no flood of sign-in challenges stops anyone from adding a passkey.
const MAX_SIGN_INS: usize = 4096;
const MAX_SIGN_INS_PER_CLIENT: usize = 16;
const MAX_REGISTRATIONS_PER_USER: usize = 4;

enum Ceremony {
    Register {
        user_id: String,
        session: String,
        state: PasskeyRegistration,
    },
    SignIn(DiscoverableAuthentication),
}

struct Pending {
    at: Instant,
    /// Whose share it counts in: the client's key for a sign-in, the user's id for a
    /// registration.
    owner: String,
    ceremony: Ceremony,
}

/// The relying party (`None`: passkeys are off, and why) and the ceremonies under way.
pub struct Passkeys {
    rp: Result<Webauthn, String>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Passkeys {
    /// The relying party of `--public-url`, or of `http://localhost` on a loopback listen.
    /// An unusable `--public-url` stops the start; a public listen without one leaves passkeys
    /// off (the API says why).
    pub fn new(settings: &Settings) -> Result<Passkeys, String> {
        let rp = match &settings.public_url {
            Some(url) => Ok(relying_party(url, false)?),
            // The port when it is known (a page on another local port is another origin).
            None if settings.listen.ip().is_loopback() => match settings.listen.port() {
                0 => Ok(relying_party("http://localhost", true)?),
                port => Ok(relying_party(&format!("http://localhost:{port}"), false)?),
            },
            None => Err(
                "Passkeys need the address users open the console at: start nuaged \
                         with --public-url https://<host name>."
                    .to_owned(),
            ),
        };
        Ok(Passkeys {
            rp,
            pending: Mutex::default(),
        })
    }

    fn rp(&self) -> Result<&Webauthn, AppError> {
        self.rp
            .as_ref()
            .map_err(|why| AppError::Conflict(why.clone()))
    }

    fn hold(&self, client: Option<IpAddr>, ceremony: Ceremony) -> Result<String, AppError> {
        let now = Instant::now();
        let registration = matches!(ceremony, Ceremony::Register { .. });
        let owner = match &ceremony {
            Ceremony::Register { user_id, .. } => user_id.clone(),
            Ceremony::SignIn(_) => client.map_or_else(String::new, super::ratelimit::client_key),
        };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, p| now.duration_since(p.at) < CEREMONY_TTL);
        let kind = |p: &Pending| matches!(p.ceremony, Ceremony::Register { .. }) == registration;
        let of_owner: Vec<(String, Instant)> = pending
            .iter()
            .filter(|(_, p)| kind(p) && p.owner == owner)
            .map(|(id, p)| (id.clone(), p.at))
            .collect();
        if registration {
            // A user's oldest registration gives way to a new one.
            if of_owner.len() >= MAX_REGISTRATIONS_PER_USER {
                if let Some((oldest, _)) = of_owner.iter().min_by_key(|(_, at)| *at) {
                    pending.remove(oldest);
                }
            }
        } else if of_owner.len() >= MAX_SIGN_INS_PER_CLIENT
            || pending.values().filter(|p| kind(p)).count() >= MAX_SIGN_INS
        {
            return Err(AppError::RateLimited(
                "Too many passkey sign-ins are under way; try again in a minute.".into(),
            ));
        }
        let id = Uuid::new_v4().to_string();
        pending.insert(
            id.clone(),
            Pending {
                at: now,
                owner,
                ceremony,
            },
        );
        Ok(id)
    }

    /// Takes a ceremony out (it is used once, even when its answer fails).
    fn take(&self, id: &str) -> Option<Ceremony> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .remove(id)
            .filter(|p| p.at.elapsed() < CEREMONY_TTL)
            .map(|p| p.ceremony)
    }
}

fn relying_party(url: &str, any_port: bool) -> Result<Webauthn, String> {
    let origin = Url::parse(url).map_err(|e| format!("--public-url {url}: not a URL ({e})"))?;
    let host = origin
        .host_str()
        .filter(|h| h.parse::<IpAddr>().is_err() && !h.starts_with('['))
        .ok_or_else(|| {
            format!("--public-url {url}: passkeys need a host name (browsers refuse IP addresses)")
        })?
        .to_owned();
    if origin.scheme() != "https" && host != "localhost" {
        return Err(format!(
            "--public-url {url}: browsers allow passkeys only over https (or on localhost)"
        ));
    }
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| {
            b.rp_name("Nuage")
                .allow_any_port(any_port)
                .timeout(CEREMONY_TTL)
                .build()
        })
        .map_err(|e| format!("--public-url {url}: {e}"))
}

/// The user handle webauthn-rs asks for: the user's id, which is a UUID.
fn handle(user_id: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(user_id).map_err(|e| AppError::internal("a user id is not a UUID", e))
}

fn credential_key(p: &Passkey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p.cred_id().as_ref())
}

fn to_value(v: &impl serde::Serialize) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(v).map_err(|e| AppError::internal("cannot encode a WebAuthn challenge", e))
}

fn valid_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid(
            "Give the passkey a name of 1 to 64 characters (no control characters).".into(),
        ));
    }
    Ok(name.to_owned())
}

impl App {
    /// `POST /me/passkeys/options`: begins registering a passkey for the caller (a recent
    /// verification needed). Their passkeys are excluded, so one authenticator is not added
    /// twice; the credential must be discoverable and verify its user.
    pub async fn begin_passkey(
        &self,
        actor: &Actor,
        client: Option<IpAddr>,
    ) -> Result<PasskeyChallenge, AppError> {
        let rp = self.passkeys.rp()?;
        self.require_recent_verification(actor)?;
        let uid = actor.user_id.to_string();
        let stored = self
            .db
            .call(move |c| passkeys::credentials(c, &uid))
            .await?;
        let exclude = stored
            .iter()
            .filter_map(|(_, json)| serde_json::from_str::<Passkey>(json).ok())
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        let (ccr, state) = rp
            .start_passkey_registration(
                handle(&actor.user_id)?,
                &actor.username,
                &actor.username,
                Some(exclude),
            )
            .map_err(|e| AppError::internal("cannot begin a passkey registration", e))?;
        let mut options = to_value(&ccr)?;
        // A passkey signs in without a username: it must be discoverable.
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(|s| s.as_object_mut())
        {
            sel.insert("residentKey".into(), "required".into());
            sel.insert("requireResidentKey".into(), true.into());
        }
        let challenge_id = self.passkeys.hold(
            client,
            Ceremony::Register {
                user_id: actor.user_id.to_string(),
                session: actor.session.clone(),
                state,
            },
        )?;
        Ok(PasskeyChallenge {
            challenge_id,
            options,
        })
    }

    /// `POST /me/passkeys`: finishes the registration begun by this session. The first second
    /// factor of the account brings ten recovery codes and ends the caller's other sessions
    /// (as confirming TOTP does).
    pub async fn add_passkey(
        &self,
        actor: &Actor,
        req: NewPasskey,
    ) -> Result<RegisteredPasskey, AppError> {
        let rp = self.passkeys.rp()?;
        self.require_recent_verification(actor)?;
        let name = valid_name(&req.name)?;
        let Some(Ceremony::Register {
            user_id,
            session,
            state,
        }) = self.passkeys.take(&req.challenge_id)
        else {
            return Err(AppError::PasskeyInvalid);
        };
        if user_id != *actor.user_id || session != actor.session {
            return Err(AppError::PasskeyInvalid);
        }
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(req.credential).map_err(|_| AppError::PasskeyInvalid)?;
        // A credential the authenticator cannot find by itself could never sign in here (the
        // sign-in names no account): refused while it can still be made elsewhere.
        if credential.extensions.cred_props.as_ref().and_then(|p| p.rk) == Some(false) {
            return Err(AppError::Invalid(
                "This authenticator cannot keep a passkey (a discoverable credential); use \
                 another, or the device's own screen lock."
                    .into(),
            ));
        }
        let passkey = rp
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| {
                tracing::info!(error = %e, "passkey registration refused");
                AppError::PasskeyInvalid
            })?;
        let json = serde_json::to_string(&passkey)
            .map_err(|e| AppError::internal("cannot store a passkey", e))?;
        let info = PasskeyInfo {
            id: Uuid::new_v4().to_string(),
            name,
            created_at: db::now_rfc3339(),
            last_used_at: None,
        };
        let codes = totp::new_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_hash(c)).collect();
        let (row, uid, key) = (info.clone(), user_id.clone(), credential_key(&passkey));
        let first = self
            .db
            .call(move |c| {
                passkeys::insert(
                    c,
                    &passkeys::NewPasskey {
                        id: &row.id,
                        user_id: &uid,
                        name: &row.name,
                        credential_id: &key,
                        passkey: &json,
                        created_at: &row.created_at,
                    },
                    &hashes,
                )
            })
            .await?
            .map_err(|r| match r {
                Refusal::NameTaken => {
                    AppError::Conflict("This passkey is registered already.".into())
                }
                Refusal::InUse { .. } => AppError::Conflict(format!(
                    "You have {} passkeys, the most an account may have; delete one first.",
                    passkeys::MAX_PER_USER
                )),
                other => other.into(),
            })?;
        if first {
            self.end_other_sessions(actor).await?;
        }
        Ok(RegisteredPasskey {
            passkey: info,
            recovery_codes: if first { codes } else { Vec::new() },
        })
    }

    /// `GET /me/passkeys`.
    pub async fn list_passkeys(&self, actor: &Actor) -> Result<Vec<PasskeyInfo>, AppError> {
        let uid = actor.user_id.to_string();
        Ok(self.db.call(move |c| passkeys::list(c, &uid)).await?)
    }

    /// `PATCH /me/passkeys/{id}`: a new name.
    pub async fn rename_passkey(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
    ) -> Result<(), AppError> {
        let name = valid_name(name)?;
        let (uid, id) = (actor.user_id.to_string(), id.to_owned());
        if self
            .db
            .call(move |c| passkeys::rename(c, &uid, &id, &name))
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("passkey"))
        }
    }

    /// `DELETE /me/passkeys/{id}` (a recent verification needed): refused for the last second
    /// factor of a user the host requires one of.
    pub async fn delete_passkey(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        self.require_recent_verification(actor)?;
        let keep = self.requires_second_factor(actor.role);
        let (uid, id) = (actor.user_id.to_string(), id.to_owned());
        self.db
            .call(move |c| passkeys::remove(c, &uid, &id, keep))
            .await?
            .map_err(|r| match r {
                Refusal::NotFound => AppError::NotFound("passkey"),
                Refusal::InUse { .. } => AppError::Conflict(
                    "This host requires a second factor of your account: this is your last one."
                        .into(),
                ),
                other => other.into(),
            })
    }

    /// `POST /auth/passkey/options`: a sign-in challenge any of the host's passkeys may answer
    /// (the browser offers the user theirs). Anonymous; bounded per client address.
    pub fn passkey_challenge(&self, client: Option<IpAddr>) -> Result<PasskeyChallenge, AppError> {
        let rp = self.passkeys.rp()?;
        let (rcr, state) = rp
            .start_discoverable_authentication()
            .map_err(|e| AppError::internal("cannot begin a passkey sign-in", e))?;
        let mut options = to_value(&rcr)?;
        // Asked for on a click, not offered in the username field's autofill.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        let challenge_id = self.passkeys.hold(client, Ceremony::SignIn(state))?;
        Ok(PasskeyChallenge {
            challenge_id,
            options,
        })
    }

    /// Checks a passkey's answer to a sign-in challenge: the id of the user it belongs to.
    /// With `of_user`, only that user's passkeys are accepted (the second factor after the
    /// password, a re-authentication).
    ///
    /// `identified` is set to the account the answer named, when it names one with passkeys
    /// (what the audit log records of a refused answer).
    pub(super) async fn check_passkey(
        &self,
        answer: PasskeyAssertion,
        of_user: Option<&str>,
        identified: &mut Option<String>,
    ) -> Result<String, AppError> {
        let rp = self.passkeys.rp()?;
        let Some(Ceremony::SignIn(state)) = self.passkeys.take(&answer.challenge_id) else {
            return Err(AppError::PasskeyInvalid);
        };
        let credential: PublicKeyCredential =
            serde_json::from_value(answer.credential).map_err(|_| AppError::PasskeyInvalid)?;
        let (handle, _) = rp
            .identify_discoverable_authentication(&credential)
            .map_err(|_| AppError::PasskeyInvalid)?;
        let user_id = handle.to_string();
        if of_user.is_some_and(|u| u != user_id) {
            return Err(AppError::PasskeyInvalid);
        }
        let uid = user_id.clone();
        let stored = self
            .db
            .call(move |c| passkeys::credentials(c, &uid))
            .await?;
        // Each row with its JSON as read (what the counter's compare-and-set writes over).
        let mut keys: Vec<(String, String, Passkey)> = stored
            .into_iter()
            .filter_map(|(id, json)| {
                let p = serde_json::from_str::<Passkey>(&json).ok()?;
                Some((id, json, p))
            })
            .collect();
        if keys.is_empty() {
            return Err(AppError::PasskeyInvalid);
        }
        *identified = Some(user_id.clone());
        let discoverable: Vec<DiscoverableKey> = keys
            .iter()
            .map(|(_, _, p)| DiscoverableKey::from(p))
            .collect();
        let result = rp
            .finish_discoverable_authentication(&credential, state, &discoverable)
            .map_err(|e| {
                if matches!(e, webauthn_rs::prelude::WebauthnError::CredentialPossibleCompromise) {
                    tracing::warn!(user = %user_id, "a passkey answered with a counter that did not \
                        move on: the credential may have been cloned; refused");
                } else {
                    tracing::info!(user = %user_id, error = %e, "passkey sign-in refused");
                }
                AppError::PasskeyInvalid
            })?;
        let Some((row, stored, passkey)) = keys
            .iter_mut()
            .find(|(_, _, p)| p.cred_id() == result.cred_id())
        else {
            return Err(AppError::PasskeyInvalid);
        };
        // The counter moves on (a clone would answer with an old one, which is refused above),
        // stored only over the credential this check read: a concurrent sign-in that moved it
        // first, or a deletion meanwhile, refuses this one.
        let updated = passkey
            .update_credential(&result)
            .filter(|changed| *changed)
            .and_then(|_| serde_json::to_string(&*passkey).ok());
        let (row, stored, at) = (row.clone(), stored.clone(), db::now_rfc3339());
        let recorded = self
            .db
            .call(move |c| passkeys::used(c, &row, &stored, updated.as_deref(), &at))
            .await?;
        if !recorded {
            return Err(AppError::PasskeyInvalid);
        }
        Ok(user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn passkeys_of(args: &[&str]) -> Result<Passkeys, String> {
        let mut all = vec!["nuaged"];
        all.extend_from_slice(args);
        let settings = Settings::resolve(crate::config::Cli::try_parse_from(all).unwrap())?;
        Passkeys::new(&settings)
    }

    #[test]
    fn the_relying_party_is_the_public_url_or_localhost_and_never_an_address() {
        let local = passkeys_of(&[]).unwrap();
        assert!(local.rp().is_ok(), "loopback: http://localhost, any port");
        let public = passkeys_of(&["--listen", "0.0.0.0:8443"]).unwrap();
        let Err(AppError::Conflict(why)) = public.rp() else {
            panic!("a public listen without --public-url has passkeys off");
        };
        assert!(why.contains("--public-url"), "{why}");
        let named = passkeys_of(&[
            "--listen",
            "0.0.0.0:8443",
            "--public-url",
            "https://panel.example.com",
        ]);
        assert!(named.unwrap().rp().is_ok());
        for (url, says) in [
            ("https://192.0.2.1:8443", "host name"),
            ("https://[2001:db8::1]", "host name"),
            ("http://panel.example.com", "https"),
            ("not a url", "not a URL"),
        ] {
            let Err(e) = passkeys_of(&["--public-url", url]) else {
                panic!("{url} accepted");
            };
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
