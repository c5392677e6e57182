//! The daemon's settings: flags, environment variables and an optional TOML file, resolved once at
//! start into [`Settings`]. Precedence: flag or environment variable, then the TOML file, then the
//! built-in default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use serde::Deserialize;

/// `--accel`: how guests are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelSetting {
    /// KVM when it can run an ordinary guest on this host, TCG otherwise.
    Auto,
    /// Hardware virtualisation; refused at start when libvirt offers no KVM domains.
    Kvm,
    /// QEMU's software emulation: slow, but runs anywhere.
    Tcg,
}

#[derive(Debug, Parser)]
#[command(
    name = "nuaged",
    version,
    about = "Nuage host daemon: self-service VPS on KVM through libvirt"
)]
pub struct Cli {
    /// Address and port to listen on (port 0 picks a free one; the log says which).
    #[arg(long, env = "NUAGE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where the database, images, disks, seeds, backups and secrets live
    /// [default: /var/lib/nuage as root, ./nuage-data otherwise].
    #[arg(long, env = "NUAGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// libvirt connection URI [default: qemu:///system when a libvirtd answers, else test:///default].
    #[arg(long, env = "NUAGE_LIBVIRT_URI")]
    pub libvirt_uri: Option<String>,
    /// Guest acceleration [default: auto].
    #[arg(long, env = "NUAGE_ACCEL", value_enum)]
    pub accel: Option<AccelSetting>,
    /// Directories admins may import disk images from, besides <data-dir>/import
    /// (repeat the flag; in the environment, separate with ':').
    #[arg(long = "import-dir", env = "NUAGE_IMPORT_DIRS", value_delimiter = ':')]
    pub import_dirs: Vec<PathBuf>,
    /// The built web console (Trunk's output) served at `/` [default: the first of
    /// <exe>/../../dist, ./dist, /usr/share/nuage/web that exists].
    #[arg(long, env = "NUAGE_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// A TOML file with any of the settings above (keys as the flags, with '_' for '-').
    #[arg(long, env = "NUAGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The password of the `admin` user created on first start (environment only, so it never
    /// shows in a process listing); generated and printed once when unset.
    #[arg(skip = std::env::var("NUAGE_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty()))]
    pub admin_password: Option<String>,
}

/// The TOML file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    libvirt_uri: Option<String>,
    accel: Option<AccelSetting>,
    import_dirs: Option<Vec<PathBuf>>,
    web_dir: Option<PathBuf>,
}

/// Where the libvirt URI came from decides what happens when it does not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibvirtTarget {
    /// Named by the operator: connect to it or fail.
    Explicit(String),
    /// Not named: `qemu:///system` if a libvirtd answers, else the simulated `test:///default`.
    Auto,
}

/// The resolved settings the daemon runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub libvirt: LibvirtTarget,
    pub accel: AccelSetting,
    /// `<data-dir>/import` first, then the operator's extra directories.
    pub import_dirs: Vec<PathBuf>,
    /// `None` when no built console was found: `/` then explains how to build it.
    pub web_dir: Option<PathBuf>,
    /// Used only on first start, when there are no users yet.
    pub admin_password: Option<String>,
}

impl Settings {
    /// Resolves the command line (and the TOML file it may name) into settings.
    pub fn resolve(cli: Cli) -> Result<Settings, String> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let listen = cli
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let data_dir = cli
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let libvirt = match cli.libvirt_uri.or(file.libvirt_uri) {
            Some(uri) if !uri.trim().is_empty() => LibvirtTarget::Explicit(uri),
            _ => LibvirtTarget::Auto,
        };
        let accel = cli.accel.or(file.accel).unwrap_or(AccelSetting::Auto);
        let mut import_dirs = vec![data_dir.join("import")];
        let extra = if cli.import_dirs.is_empty() {
            file.import_dirs.unwrap_or_default()
        } else {
            cli.import_dirs
        };
        import_dirs.extend(extra.into_iter().filter(|d| !d.as_os_str().is_empty()));
        let web_dir = match cli.web_dir.or(file.web_dir) {
            Some(dir) => {
                if !dir.join("index.html").is_file() {
                    return Err(format!(
                        "web dir {} has no index.html: build the console with `trunk build --release`",
                        dir.display()
                    ));
                }
                Some(dir)
            }
            None => default_web_dir(),
        };
        Ok(Settings {
            listen,
            data_dir,
            libvirt,
            accel,
            import_dirs,
            web_dir,
            admin_password: cli.admin_password,
        })
    }
}

fn default_data_dir() -> PathBuf {
    if running_as_root() {
        PathBuf::from("/var/lib/nuage")
    } else {
        PathBuf::from("./nuage-data")
    }
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn default_web_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/release/nuaged → <repo>/dist
        if let Some(repo) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            candidates.push(repo.join("dist"));
        }
    }
    candidates.push(PathBuf::from("./dist"));
    candidates.push(PathBuf::from("/usr/share/nuage/web"));
    candidates
        .into_iter()
        .find(|d| d.join("index.html").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["nuaged"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn defaults_listen_on_loopback_8080_with_auto_accel() {
        let s = Settings::resolve(cli(&[])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.accel, AccelSetting::Auto);
        assert_eq!(s.libvirt, LibvirtTarget::Auto);
        assert_eq!(s.import_dirs, vec![s.data_dir.join("import")]);
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nuage.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\naccel = \"kvm\"\nlibvirt_uri = \"test:///default\"\n\
             import_dirs = [\"/srv/images\"]\n",
        )
        .unwrap();
        let s = Settings::resolve(cli(&["--config", file.to_str().unwrap(), "--accel", "tcg"]))
            .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.accel, AccelSetting::Tcg);
        assert_eq!(s.libvirt, LibvirtTarget::Explicit("test:///default".into()));
        assert_eq!(s.import_dirs[1], PathBuf::from("/srv/images"));
    }

    #[test]
    fn unknown_config_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nuage.toml");
        std::fs::write(&file, "listne = \"127.0.0.1:9000\"\n").unwrap();
        let err = Settings::resolve(cli(&["--config", file.to_str().unwrap()])).unwrap_err();
        assert!(err.contains("listne"), "{err}");
        assert!(Cli::try_parse_from(["nuaged", "--accel", "xen"]).is_err());
    }

    #[test]
    fn a_web_dir_without_index_html_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Settings::resolve(cli(&["--web-dir", dir.path().to_str().unwrap()])).unwrap_err();
        assert!(err.contains("index.html"), "{err}");
    }
}
