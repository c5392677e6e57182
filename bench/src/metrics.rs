//! `metrics`: one metrics cycle over 1,000 servers, beside polling each domain.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::list::{insert_servers, test_node_file};
use crate::support::{p50_p99, serve};

/// One metrics cycle over 1,000 running servers on `test:///default` (one bulk stats call, rates,
/// history, events), beside polling the same domains one call each (what a panel without the
/// bulk call does) and `virsh domstats`.
pub(crate) async fn bench_metrics() {
    let n = 1_000usize;
    let (app, _url, dir) = serve("test:///default", None).await;
    let owner = app
        .db
        .call(|c| {
            Ok(
                c.query_row("SELECT id FROM users WHERE username = 'admin'", [], |r| {
                    r.get::<_, String>(0)
                })?,
            )
        })
        .await
        .unwrap();
    let ids = insert_servers(&app, &owner, n).await;
    // The same running domains in the daemon's simulated libvirt (shared within this process).
    let names: Vec<String> = ids.iter().map(|id| format!("nuage-{id}")).collect();
    let defined = names.clone();
    tokio::task::spawn_blocking(move || {
        let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();
        for name in &defined {
            let xml = format!(
                "<domain type='test'><name>{name}</name><memory>262144</memory><vcpu>1</vcpu>\
                 <os><type>hvm</type></os></domain>"
            );
            conn.define_domain_xml(&xml).unwrap().create().unwrap();
        }
    })
    .await
    .unwrap();

    let mut ours = Vec::new();
    for i in 0..60 {
        let t = Instant::now();
        let sampled = app.sample_metrics().await.unwrap();
        if i >= 10 {
            ours.push(t.elapsed());
        }
        if i > 0 {
            assert_eq!(sampled, n, "every server sampled");
        }
    }
    let polled = tokio::task::spawn_blocking(move || {
        let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();
        let mut samples = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            for name in &names {
                let dom = conn.lookup_domain_by_name(name).unwrap();
                let info = dom.info().unwrap();
                std::hint::black_box(info.cpu_time);
            }
            samples.push(t.elapsed());
        }
        samples
    })
    .await
    .unwrap();
    let mut polled = polled;
    // virsh runs in another process, so it gets its own simulated host with the same domains.
    let node = test_node_file(
        dir.path(),
        &ids.iter()
            .map(|id| format!("nuage-{id}"))
            .collect::<Vec<_>>(),
    );
    let uri = format!("test://{}", node.display());
    let mut virsh = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let out = Command::new("virsh")
            .args([
                "-c",
                &uri,
                "domstats",
                "--cpu-total",
                "--balloon",
                "--interface",
                "--block",
            ])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        virsh.push(t.elapsed());
        assert!(out.status.success());
    }
    println!("| 1,000 running servers, `test:///default` | p50 / p99 |");
    println!("|---|---|");
    println!(
        "| nuaged metrics cycle (bulk stats call, rates, history, events) | {} |",
        p50_p99(&mut ours)
    );
    println!(
        "| one `virDomainGetInfo` per server, in-process | {} |",
        p50_p99(&mut polled)
    );
    println!(
        "| `virsh domstats` (all groups nuaged reads) | {} |",
        p50_p99(&mut virsh)
    );
    drop(app);
}
