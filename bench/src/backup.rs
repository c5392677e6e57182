//! `backup`: backup and restore of a 2 GiB disk, beside `qemu-img convert` of the same disk.

use std::time::{Duration, Instant};

use crate::support::{
    disk_image, mib_s, ms, percentile, serve_with_image, timed_convert, wait_job,
};
use nuage_e2e::Scratch;
use serde_json::{json, Value};

/// Backup and restore of a 2 GiB disk holding 1 GiB of data (half random, half the host's own
/// binaries), beside `qemu-img convert` of the same disk in the same run; and the archive's size
/// against the data.
pub(crate) async fn bench_backup(uri: &str) {
    let work = Scratch::new("nuage-bench-img-");
    let image = disk_image(work.path(), true);
    let (app, _url, dir, api, image_id) = serve_with_image(uri, &work, &image).await;
    let body = json!({"name": "big", "image_id": image_id, "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "start": false});
    let (_, vm) = api.post("/api/v1/vms", body).await;
    let id = vm["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{vm}"))
        .to_owned();
    let disk = dir.path().join("data/vms").join(&id).join("disk.qcow2");
    let data: u64 = 1 << 30;
    let post = |path: String, body: Value| {
        let api = &api;
        async move { api.post(&path, body).await.1 }
    };

    let (mut stopped, mut running, mut restore, mut convert, mut sizes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..3 {
        let t = Instant::now();
        let job = post(format!("/api/v1/vms/{id}/backups"), json!({})).await;
        stopped.push(wait_job(&api, &job, t).await);
        let path = format!("/api/v1/backups/{}", job["backup_id"].as_str().unwrap());
        let (_, b) = api.get(&path).await;
        sizes.push(b["size_bytes"].as_u64().unwrap());
        // Restore in place (the server is stopped).
        let t = Instant::now();
        let job = post(
            format!("/api/v1/backups/{}/restore", b["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
        restore.push(wait_job(&api, &job, t).await);
        // The practical limit: qemu-img copying the same disk (backing chain flattened).
        convert.push(timed_convert(
            &disk,
            &dir.path().join(format!("convert-{i}.qcow2")),
            false,
        ));
    }
    // For context: qemu-img's own compressed copy (zlib, one thread), once.
    let dest = dir.path().join("convert-c.qcow2");
    let compressed = timed_convert(&disk, &dest, true);
    let compressed_size = std::fs::metadata(&dest).unwrap().len();
    std::fs::remove_file(dest).unwrap();
    // While the server runs (libvirt's backup job on qemu:///system; the guest has no OS here, the
    // copy is what is measured).
    post(format!("/api/v1/vms/{id}/start"), json!({})).await;
    for _ in 0..3 {
        let t = Instant::now();
        let job = post(format!("/api/v1/vms/{id}/backups"), json!({})).await;
        running.push(wait_job(&api, &job, t).await);
    }
    let med = |v: &mut Vec<Duration>| percentile(v, 0.5);
    let (s, r, rs, c) = (
        med(&mut stopped),
        med(&mut running),
        med(&mut restore),
        med(&mut convert),
    );
    println!(
        "2 GiB disk, 1 GiB of data (512 MiB random, 512 MiB of binaries), {uri}, medians of 3:"
    );
    println!("| operation | time | throughput (data) | vs `qemu-img convert` |");
    println!("|---|---|---|---|");
    for (what, d) in [
        ("`qemu-img convert -O qcow2` (peer)", c),
        ("backup, server stopped (job, to a verified archive)", s),
        ("backup, server running (libvirt backup job + archive)", r),
        ("restore in place (verify + decompress)", rs),
        (
            "`qemu-img convert -c -O qcow2` (compressed copy, once)",
            compressed,
        ),
    ] {
        println!(
            "| {what} | {} | {} | {:.0}% |",
            ms(d),
            mib_s(data, d),
            100.0 * c.as_secs_f64() / d.as_secs_f64()
        );
    }
    let size = sizes[0];
    println!(
        "qemu-img's compressed qcow2: {:.0} MiB",
        compressed_size as f64 / (1 << 20) as f64
    );
    println!(
        "archive: {:.0} MiB for 1024 MiB of data ({:.0}% of the allocated bytes)",
        size as f64 / (1 << 20) as f64,
        100.0 * size as f64 / data as f64
    );
    let (hv, net) = (app.hv.clone(), app.network().name.clone());
    let _ = tokio::task::spawn_blocking(move || hv.remove_network(&net)).await;
}
