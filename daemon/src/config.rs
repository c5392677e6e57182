//! The daemon's settings: flags, environment variables and an optional TOML file, resolved once at
//! start into [`Settings`]. Precedence: flag or environment variable, then the TOML file, then the
//! built-in default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};

use crate::cidr::Cidr;
use serde::Deserialize;

/// `--console-listen`: where guests' VNC servers listen besides libvirt's socket pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleListen {
    None,
    Loopback,
}

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
    /// Where guests' VNC servers listen: `none` (no TCP port at all; the daemon reaches each
    /// screen through libvirt's socket pair) or `loopback` (also 127.0.0.1, for libvirt
    /// connections that cannot pass sockets; the daemon falls back to it) [default: none].
    #[arg(long, env = "NUAGE_CONSOLE_LISTEN", value_enum)]
    pub console_listen: Option<ConsoleListen>,
    /// Directories admins may import disk images from, besides <data-dir>/import
    /// (repeat the flag; in the environment, separate with ':').
    #[arg(long = "import-dir", env = "NUAGE_IMPORT_DIRS", value_delimiter = ':')]
    pub import_dirs: Vec<PathBuf>,
    /// Reverse proxies in front of the daemon, as addresses or CIDRs (repeat the flag; in the
    /// environment, separate with ','): for a request from one of them, the client is the
    /// address that proxy appended to `Forwarded` or `X-Forwarded-For` (what the sign-in limits
    /// and the audit log count) [default: none].
    #[arg(
        long = "trusted-proxy",
        env = "NUAGE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_net
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The certificate to serve HTTPS with (PEM, the leaf first, then its chain); with
    /// `--tls-key`. Re-read on SIGHUP [default: none: plain HTTP on a loopback listen, a
    /// self-signed certificate in <data-dir>/tls/ on any other].
    #[arg(long, env = "NUAGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Who must have a second factor (TOTP): such a user without one is asked to enrol right
    /// after signing in and can do nothing else until then [default: admins].
    #[arg(long = "require-2fa", env = "NUAGE_REQUIRE_2FA", value_enum)]
    pub require_2fa: Option<Require2fa>,
    /// The address users open the web console at (`https://panel.example.com`): passkeys are
    /// bound to its host name [default: `http://localhost` (any port) on a loopback listen;
    /// on any other listen, passkeys are off until it is given].
    #[arg(long, env = "NUAGE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The certificate's private key (PEM); with `--tls-cert`.
    #[arg(long, env = "NUAGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The built web console (Trunk's output) served at `/` [default: the first of
    /// <exe>/../../dist, ./dist, /usr/share/nuage/web that exists].
    #[arg(long, env = "NUAGE_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// A TOML file with any of the settings above (keys as the flags, with '_' for '-'; the host
    /// policy's keys go in a `[host]` table).
    #[arg(long, env = "NUAGE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostPolicyArgs,
    /// The password of the `admin` user created on first start (environment only, so it never
    /// shows in a process listing); generated and printed once when unset.
    #[arg(skip = std::env::var("NUAGE_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty()))]
    pub admin_password: Option<String>,
}

/// `--require-2fa`: who must have a second factor to use their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require2fa {
    None,
    Admins,
    All,
}

/// `--network-mode`: how the daemon's libvirt network reaches the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Guests reach outside through the host (libvirt's NAT forwarding).
    Nat,
    /// Host and guests only, no forwarding (tests).
    Isolated,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Nat => "nat",
            NetworkMode::Isolated => "isolated",
        }
    }
}

/// The host's resource policy: overcommit, per-server limits, networking, metrics. Flags, or a
/// `[host]` table in the TOML file.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPolicyArgs {
    /// vCPUs that may be allocated per host CPU [default: 4].
    #[arg(long, env = "NUAGE_CPU_OVERCOMMIT")]
    pub cpu_overcommit: Option<f64>,
    /// Memory that may be allocated per MiB of host memory [default: 1, no overcommit].
    #[arg(long, env = "NUAGE_MEMORY_OVERCOMMIT")]
    pub memory_overcommit: Option<f64>,
    /// Disk GiB that may be allocated per GiB of the data dir's file system [default: 1].
    #[arg(long, env = "NUAGE_DISK_OVERCOMMIT")]
    pub disk_overcommit: Option<f64>,
    /// Host memory kept for the host itself, never allocated to servers [default: 512].
    #[arg(long, env = "NUAGE_RESERVED_MEMORY_MIB")]
    pub reserved_memory_mib: Option<u64>,
    /// What a server's QEMU process may use beyond the guest's memory before the host's memory
    /// cgroup stops it [default: 256].
    #[arg(long, env = "NUAGE_MEMORY_OVERHEAD_MIB")]
    pub memory_overhead_mib: Option<u64>,
    /// Hard CPU cap per vCPU in percent of a core, 0 for none [default: 0].
    #[arg(long, env = "NUAGE_CPU_CAP_PERCENT")]
    pub cpu_cap_percent: Option<u32>,
    /// Disk I/O operations per second per server, 0 for unlimited [default: 2000].
    #[arg(long, env = "NUAGE_DISK_IOPS")]
    pub disk_iops: Option<u64>,
    /// Disk bytes per second per server, 0 for unlimited [default: 209715200, 200 MiB/s].
    #[arg(long, env = "NUAGE_DISK_BYTES_PER_SEC")]
    pub disk_bytes_per_sec: Option<u64>,
    /// Network rate into and out of each server in KiB/s, 0 for unlimited [default: 12500,
    /// 100 Mbit/s].
    #[arg(long, env = "NUAGE_NET_KIB_PER_SEC")]
    pub net_kib_per_sec: Option<u64>,
    /// The daemon's libvirt network [default: nat].
    #[arg(long, env = "NUAGE_NETWORK_MODE", value_enum)]
    pub network_mode: Option<NetworkMode>,
    /// Its name [default: nuage-<first 8 characters of the daemon's id>].
    #[arg(long, env = "NUAGE_NETWORK_NAME")]
    pub network_name: Option<String>,
    /// Its IPv4 subnet, /16 to /24 (e.g. 10.77.0.0/22) [default: a free 10.x.y.0/22 chosen on
    /// first start].
    #[arg(long, env = "NUAGE_NETWORK_CIDR")]
    pub network_cidr: Option<String>,
    /// Seconds between two usage samples of every server [default: 10].
    #[arg(long, env = "NUAGE_METRICS_INTERVAL")]
    pub metrics_interval: Option<u64>,
    /// Days the audit log keeps an entry [default: 90].
    #[arg(long, env = "NUAGE_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Entries the audit log keeps at most, the oldest going first [default: 1000000].
    #[arg(long, env = "NUAGE_AUDIT_MAX_ROWS")]
    pub audit_max_rows: Option<u64>,
    /// Client connections served at once; more wait to be accepted [default: 1024].
    #[arg(long, env = "NUAGE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

/// The resolved host policy.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    pub disk_overcommit: f64,
    pub reserved_memory_mib: u64,
    pub memory_overhead_mib: u64,
    pub cpu_cap_percent: u32,
    pub disk_iops: u64,
    pub disk_bytes_per_sec: u64,
    pub net_kib_per_sec: u64,
    pub network_mode: NetworkMode,
    pub network_name: Option<String>,
    /// The servers' subnet, when the operator chose one.
    pub network_cidr: Option<Cidr>,
    pub metrics_interval: std::time::Duration,
    pub audit_retention_days: u32,
    pub audit_max_rows: u64,
    pub max_connections: usize,
}

impl Default for HostPolicy {
    /// The built-in defaults.
    fn default() -> HostPolicy {
        HostPolicyArgs::default()
            .resolve()
            .expect("the built-in defaults are valid")
    }
}

impl HostPolicyArgs {
    fn or(self, file: HostPolicyArgs) -> HostPolicyArgs {
        HostPolicyArgs {
            cpu_overcommit: self.cpu_overcommit.or(file.cpu_overcommit),
            memory_overcommit: self.memory_overcommit.or(file.memory_overcommit),
            disk_overcommit: self.disk_overcommit.or(file.disk_overcommit),
            reserved_memory_mib: self.reserved_memory_mib.or(file.reserved_memory_mib),
            memory_overhead_mib: self.memory_overhead_mib.or(file.memory_overhead_mib),
            cpu_cap_percent: self.cpu_cap_percent.or(file.cpu_cap_percent),
            disk_iops: self.disk_iops.or(file.disk_iops),
            disk_bytes_per_sec: self.disk_bytes_per_sec.or(file.disk_bytes_per_sec),
            net_kib_per_sec: self.net_kib_per_sec.or(file.net_kib_per_sec),
            network_mode: self.network_mode.or(file.network_mode),
            network_name: self.network_name.or(file.network_name),
            network_cidr: self.network_cidr.or(file.network_cidr),
            metrics_interval: self.metrics_interval.or(file.metrics_interval),
            audit_retention_days: self.audit_retention_days.or(file.audit_retention_days),
            audit_max_rows: self.audit_max_rows.or(file.audit_max_rows),
            max_connections: self.max_connections.or(file.max_connections),
        }
    }

    fn resolve(self) -> Result<HostPolicy, String> {
        let ratio = |name: &str, v: Option<f64>, default: f64| match v {
            None => Ok(default),
            Some(r) if r.is_finite() && r > 0.0 && r <= 1000.0 => Ok(r),
            Some(r) => Err(format!("{name} must be above 0 and at most 1000, not {r}")),
        };
        let network_cidr = match &self.network_cidr {
            None => None,
            Some(c) => Some(Cidr::parse(c)?),
        };
        if let Some(n) = &self.network_name {
            let ok = (1..=32).contains(&n.len())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(format!(
                    "network name {n:?}: 1-32 letters, digits, '-' or '_'"
                ));
            }
        }
        let cap = self.cpu_cap_percent.unwrap_or(0);
        if cap > 100 {
            return Err(format!(
                "cpu cap {cap}%: at most 100 (per vCPU), 0 for none"
            ));
        }
        let interval = self.metrics_interval.unwrap_or(10);
        if !(1..=3600).contains(&interval) {
            return Err(format!("metrics interval {interval} s: 1 to 3600"));
        }
        let retention = self.audit_retention_days.unwrap_or(90);
        if !(1..=36_500).contains(&retention) {
            return Err(format!("audit retention {retention} days: 1 to 36500"));
        }
        let max_rows = self.audit_max_rows.unwrap_or(1_000_000);
        if max_rows < 1000 {
            return Err(format!("audit max rows {max_rows}: at least 1000"));
        }
        let max_connections = self.max_connections.unwrap_or(1024);
        if !(16..=1_000_000).contains(&max_connections) {
            return Err(format!("max connections {max_connections}: 16 to 1000000"));
        }
        Ok(HostPolicy {
            audit_retention_days: retention,
            audit_max_rows: max_rows,
            max_connections,
            cpu_overcommit: ratio("cpu overcommit", self.cpu_overcommit, 4.0)?,
            memory_overcommit: ratio("memory overcommit", self.memory_overcommit, 1.0)?,
            disk_overcommit: ratio("disk overcommit", self.disk_overcommit, 1.0)?,
            reserved_memory_mib: self.reserved_memory_mib.unwrap_or(512),
            memory_overhead_mib: self.memory_overhead_mib.unwrap_or(256),
            cpu_cap_percent: cap,
            disk_iops: self.disk_iops.unwrap_or(2000),
            disk_bytes_per_sec: self.disk_bytes_per_sec.unwrap_or(200 << 20),
            net_kib_per_sec: self.net_kib_per_sec.unwrap_or(12_500),
            network_mode: self.network_mode.unwrap_or(NetworkMode::Nat),
            network_name: self.network_name,
            network_cidr,
            metrics_interval: std::time::Duration::from_secs(interval),
        })
    }
}

/// The TOML file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    libvirt_uri: Option<String>,
    accel: Option<AccelSetting>,
    console_listen: Option<ConsoleListen>,
    import_dirs: Option<Vec<PathBuf>>,
    #[serde(default, deserialize_with = "nets")]
    trusted_proxies: Option<Vec<ipnet::IpNet>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    require_2fa: Option<Require2fa>,
    public_url: Option<String>,
    web_dir: Option<PathBuf>,
    #[serde(default)]
    host: HostPolicyArgs,
}

/// How the API is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSetting {
    /// Plain HTTP: only on a loopback listen without a certificate.
    Off,
    /// The operator's certificate and key.
    Files { cert: PathBuf, key: PathBuf },
    /// A public listen without a certificate: the one generated into `<data-dir>/tls/`.
    SelfSigned,
}

/// An address (`192.0.2.7`, one host) or a CIDR (`10.0.0.0/8`, `2001:db8::/32`).
pub fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(ip.into());
    }
    let net: ipnet::IpNet = text
        .parse()
        .map_err(|_| format!("{text:?} is neither an IP address nor a CIDR such as 10.0.0.0/8"))?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

fn nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<ipnet::IpNet>>, D::Error> {
    let texts: Option<Vec<String>> = Option::deserialize(d)?;
    texts
        .map(|t| t.iter().map(|n| parse_net(n)).collect())
        .transpose()
        .map_err(serde::de::Error::custom)
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
    pub console_listen: ConsoleListen,
    /// `<data-dir>/import` first, then the operator's extra directories.
    pub import_dirs: Vec<PathBuf>,
    /// `None` when no built console was found: `/` then explains how to build it.
    pub web_dir: Option<PathBuf>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub tls: TlsSetting,
    pub require_2fa: Require2fa,
    /// Where users open the console (passkeys' relying party), when the operator said.
    pub public_url: Option<String>,
    /// Used only on first start, when there are no users yet.
    pub admin_password: Option<String>,
    pub host: HostPolicy,
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
        let console_listen = cli
            .console_listen
            .or(file.console_listen)
            .unwrap_or(ConsoleListen::None);
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
        let host = cli.host.or(file.host).resolve()?;
        let trusted_proxies = if cli.trusted_proxies.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            cli.trusted_proxies
        };
        let tls = match (cli.tls_cert.or(file.tls_cert), cli.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => TlsSetting::Files { cert, key },
            (None, None) if listen.ip().is_loopback() => TlsSetting::Off,
            (None, None) => TlsSetting::SelfSigned,
            _ => return Err("give both --tls-cert and --tls-key, or neither".into()),
        };
        Ok(Settings {
            require_2fa: cli
                .require_2fa
                .or(file.require_2fa)
                .unwrap_or(Require2fa::Admins),
            public_url: cli
                .public_url
                .or(file.public_url)
                .filter(|u| !u.trim().is_empty()),
            tls,
            host,
            listen,
            data_dir,
            libvirt,
            accel,
            console_listen,
            import_dirs,
            web_dir,
            trusted_proxies,
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
    rustix::process::geteuid().is_root()
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
    fn a_public_listen_is_never_plain_http() {
        let tls = |args: &[&str]| Settings::resolve(cli(args)).map(|s| s.tls);
        assert_eq!(tls(&[]).unwrap(), TlsSetting::Off);
        assert_eq!(tls(&["--listen", "[::1]:80"]).unwrap(), TlsSetting::Off);
        assert_eq!(
            tls(&["--listen", "0.0.0.0:8443"]).unwrap(),
            TlsSetting::SelfSigned
        );
        assert_eq!(
            tls(&["--listen", "10.0.0.5:8443"]).unwrap(),
            TlsSetting::SelfSigned
        );
        assert_eq!(
            tls(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem"]).unwrap(),
            TlsSetting::Files {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            }
        );
        let mut args = vec!["nuaged", "--tls-cert", "/c.pem"];
        assert!(
            Cli::try_parse_from(&args).is_err(),
            "a certificate needs its key"
        );
        args[1] = "--tls-key";
        assert!(Cli::try_parse_from(&args).is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidrs() {
        let s = Settings::resolve(cli(&[
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "10.0.0.0/8,2001:db8::/32",
        ]))
        .unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32"]);
        assert!(parse_net("10.0.0.1/8").unwrap_err().contains("10.0.0.0/8"));
        assert!(parse_net("nope").is_err());
        assert!(Cli::try_parse_from(["nuaged", "--trusted-proxy", "300.1.1.1"]).is_err());
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
    fn host_policy_has_defaults_and_checks_values() {
        let p = Settings::resolve(cli(&[])).unwrap().host;
        assert_eq!((p.cpu_overcommit, p.memory_overcommit), (4.0, 1.0));
        assert_eq!(p.network_mode, NetworkMode::Nat);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nuage.toml");
        std::fs::write(
            &file,
            "[host]\ncpu_overcommit = 2.5\nnetwork_cidr = \"10.9.8.0/24\"\n",
        )
        .unwrap();
        let p = Settings::resolve(cli(&["--config", file.to_str().unwrap()]))
            .unwrap()
            .host;
        assert_eq!(p.cpu_overcommit, 2.5);
        assert_eq!(p.network_cidr.unwrap().to_string(), "10.9.8.0/24");
        for bad in [
            &["--cpu-overcommit", "0"][..],
            &["--network-cidr", "10.0.0.0/12"],
            &["--network-cidr", "10.0.0.7/24"],
            &["--cpu-cap-percent", "150"],
            &["--network-name", "a b"],
        ] {
            assert!(Settings::resolve(cli(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_web_dir_without_index_html_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Settings::resolve(cli(&["--web-dir", dir.path().to_str().unwrap()])).unwrap_err();
        assert!(err.contains("index.html"), "{err}");
    }
}
