//! HTTPS: the operator's certificate and key (PEM, a chain allowed), or a self-signed pair made
//! into `<data-dir>/tls/` for a public listen that has none. The pair is re-read on `SIGHUP`
//! (certbot renewals): connections already open keep the session they have, the next handshake
//! gets the new certificate. ALPN offers HTTP/2 and HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::config::{Settings, TlsSetting};

/// The certificate the listener serves, swapped whole on reload.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Loaded>,
}

#[derive(Clone)]
struct Loaded {
    acceptor: TlsAcceptor,
    fingerprint: String,
}

impl Tls {
    /// Reads the pair; refuses a file that is missing, not PEM, or a key that does not match.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let loaded = read_pair(cert, key)?;
        Ok(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(loaded),
        })
    }

    /// Reads the pair again; on failure the one in use stays (and the error says why).
    pub fn reload(&self) -> Result<String, String> {
        let loaded = read_pair(&self.cert, &self.key)?;
        let fingerprint = loaded.fingerprint.clone();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(fingerprint)
    }

    /// What the next handshake uses.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.loaded().acceptor
    }

    /// The SHA-256 fingerprint of the leaf certificate in use (`AB:CD:…`).
    pub fn fingerprint(&self) -> String {
        self.loaded().fingerprint
    }

    fn loaded(&self) -> Loaded {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<Loaded, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "TLS certificate {}: no certificate in the file",
            cert.display()
        ));
    };
    let fingerprint = fingerprint(leaf);
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "TLS certificate {} and key {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    })
}

/// `AB:CD:…`, as browsers and `openssl x509 -fingerprint -sha256` show it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The TLS the settings ask for: none, the operator's pair, or the generated one (made on first
/// start). Returns it with a line for the operator when the pair was generated.
pub fn prepare(settings: &Settings) -> Result<Option<Tls>, String> {
    match &settings.tls {
        TlsSetting::Off => Ok(None),
        TlsSetting::Files { cert, key } => Tls::load(cert, key).map(Some),
        TlsSetting::SelfSigned => {
            let dir = settings.data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !cert.exists() || !key.exists() {
                generate(&dir, &cert, &key, settings)?;
            }
            // Whatever happened to them since, they are the daemon's alone.
            use std::os::unix::fs::PermissionsExt;
            for (path, mode) in [(&dir, 0o700), (&key, 0o600), (&cert, 0o600)] {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| format!("TLS files in {}: {e}", dir.display()))?;
            }
            Tls::load(&cert, &key).map(Some)
        }
    }
}

/// A self-signed certificate for the listen address, `localhost` and the host's name.
fn generate(dir: &Path, cert: &Path, key: &Path, settings: &Settings) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let fail = |e: &dyn std::fmt::Display| format!("generating a TLS certificate: {e}");
    // The data dir exists (made by the start with its own modes); only `tls/` is made here.
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(fail(&e)),
        _ => {}
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| fail(&e))?;
    let mut names = vec!["localhost".to_owned()];
    if let Ok(host) = rustix::system::uname().nodename().to_str() {
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_owned());
        }
    }
    // An unspecified listen (all addresses) also answers on the loopback (an SSH tunnel).
    match settings.listen.ip() {
        ip if ip.is_unspecified() => names.extend(["127.0.0.1".to_owned(), "::1".to_owned()]),
        ip => names.push(ip.to_string()),
    }
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| fail(&e))?;
    for (path, text) in [
        (key, made.signing_key.serialize_pem()),
        (cert, made.cert.pem()),
    ] {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| fail(&e))?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| fail(&e))?;
        file.sync_all().map_err(|e| fail(&e))?;
    }
    tracing::info!(dir = %dir.display(), "generated a self-signed TLS certificate");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert, key, fingerprint(made.cert.der()))
    }

    #[test]
    fn a_pair_loads_reloads_and_a_bad_reload_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, first) = pair(dir.path(), "one");
        let tls = Tls::load(&cert, &key).unwrap();
        assert_eq!(tls.fingerprint(), first);
        assert_eq!(first.len(), 32 * 3 - 1);

        let (cert2, key2, second) = pair(dir.path(), "two");
        std::fs::copy(&cert2, &cert).unwrap();
        std::fs::copy(&key2, &key).unwrap();
        assert_eq!(tls.reload().unwrap(), second);
        assert_eq!(tls.fingerprint(), second);

        // A half-written renewal: the certificate no longer matches... the key is garbage.
        std::fs::write(&key, "not a key").unwrap();
        let err = tls.reload().unwrap_err();
        assert!(err.contains("TLS key"), "{err}");
        assert_eq!(tls.fingerprint(), second, "the old pair stays in use");

        // A key of another certificate is refused by name.
        std::fs::copy(dir.path().join("one.key"), &key).ok();
        let (_, other_key, _) = pair(dir.path(), "three");
        let err = Tls::load(&cert, &other_key).map(|_| ()).unwrap_err();
        assert!(err.contains("and key"), "{err}");
        let err = Tls::load(&dir.path().join("missing"), &key)
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
