//! `list`: `GET /api/v1/vms` with N servers, beside libvirt listing the same N domains.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use crate::support::{admin, get_vms_raw, p50_p99, serve};
use nuage_daemon::app::App;
use nuage_shared::{Image, Vm, VmState};

/// A libvirt test-driver node file holding `names` as defined, running domains.
pub(crate) fn test_node_file(dir: &Path, names: &[String]) -> PathBuf {
    let mut xml = String::from(
        "<node><cpu><mhz>2000</mhz><model>x86_64</model><active>16</active><max>16</max>\
         <nodes>1</nodes><sockets>1</sockets><cores>16</cores><threads>1</threads></cpu>\
         <memory>33554432</memory>",
    );
    for n in names {
        xml.push_str(&format!(
            "<domain type='test'><name>{n}</name><memory>262144</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os></domain>"
        ));
    }
    xml.push_str("</node>");
    let path = dir.join(format!("node-{}.xml", names.len()));
    std::fs::write(&path, xml).unwrap();
    path
}

/// Writes `n` running servers of `owner` straight into the database (creating thousands of disks
/// would measure qemu-img, not what the benchmark is about); returns their ids.
pub(crate) async fn insert_servers(app: &Arc<App>, owner: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (rows, host, owner) = (ids.clone(), app.daemon_id.clone(), owner.to_owned());
    app.db
        .call(move |c| {
            let tx = c.transaction()?;
            let image = Image {
                id: "bench-image".into(),
                name: "bench".into(),
                format: "raw".into(),
                virtual_size_bytes: 1 << 20,
                os: None,
                created_at: "2026-01-01T00:00:00Z".into(),
            };
            nuage_daemon::db::images::insert(
                &tx,
                &nuage_daemon::db::images::ImageRow {
                    image,
                    path: "/nonexistent".into(),
                },
            )?;
            for (i, id) in rows.iter().enumerate() {
                let vm = Vm {
                    id: id.clone().into(),
                    name: format!("server-{i}"),
                    owner_id: owner.clone().into(),
                    host_id: host.clone().into(),
                    state: VmState::Running,
                    vcpus: 1,
                    memory_mib: 256,
                    disk_gib: 1,
                    image_id: "bench-image".into(),
                    hostname: format!("server-{i}"),
                    created_at: "2026-01-01T00:00:00Z".into(),
                    ip_addresses: vec![],
                    pending: None,
                    mac_address: None,
                    limits: Default::default(),
                    limit_overrides: Default::default(),
                    stop_reason: None,
                };
                nuage_daemon::db::vms::insert(&tx, &vm)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
    ids
}

/// `GET /api/v1/vms` with N servers, beside libvirt listing the same N domains.
pub(crate) async fn bench_list() {
    println!("| servers | nuaged GET /api/v1/vms p50 / p99 | `virsh list --all` p50 / p99 | libvirt API list + state, in-process p50 / p99 |");
    println!("|---|---|---|---|");
    for n in [1_000usize, 10_000] {
        let (app, url, dir) = serve("test:///default", None).await;
        let http = nuage_e2e::http_client();
        let admin = admin(&url).await;
        let (token, owner) = (admin.token().to_owned(), admin.my_id().await);
        // The records are written straight into the database (creating 10,000 disks would
        // measure qemu-img, not the listing); the list is served from these rows either way.
        let names = insert_servers(&app, &owner, n).await;

        let rounds = if n > 5_000 { 60 } else { 200 };
        let mut ours = Vec::new();
        for i in 0..rounds + 10 {
            let t = Instant::now();
            let bytes = get_vms_raw(&http, &url, &token).await;
            if i >= 10 {
                ours.push(t.elapsed());
            }
            assert!(bytes > n * 100, "the list holds every server");
        }

        let domain_names: Vec<String> = names.iter().map(|id| format!("nuage-{id}")).collect();
        let node = test_node_file(dir.path(), &domain_names);
        let uri = format!("test://{}", node.display());
        let mut virsh = Vec::new();
        for _ in 0..(if n > 5_000 { 10 } else { 30 }) {
            let t = Instant::now();
            let out = Command::new("virsh")
                .args(["-c", &uri, "list", "--all"])
                .stdout(Stdio::piped())
                .output()
                .unwrap();
            virsh.push(t.elapsed());
            assert!(out.stdout.len() > n * 40);
        }
        let uri2 = uri.clone();
        let mut api = tokio::task::spawn_blocking(move || {
            let conn = virt::connect::Connect::open(Some(&uri2)).unwrap();
            let mut samples = Vec::new();
            for _ in 0..30 {
                let t = Instant::now();
                let doms = conn.list_all_domains(0).unwrap();
                let mut count = 0;
                for d in &doms {
                    let _ = (d.name().unwrap(), d.state().unwrap());
                    count += 1;
                }
                samples.push(t.elapsed());
                assert_eq!(count, doms.len());
            }
            samples
        })
        .await
        .unwrap();
        println!(
            "| {n} | {} | {} | {} |",
            p50_p99(&mut ours),
            p50_p99(&mut virsh),
            p50_p99(&mut api)
        );
        drop(app);
    }
}
