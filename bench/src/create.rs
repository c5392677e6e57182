//! `create`: create to `running` with a linked clone, beside a full copy of the disk.

use std::time::Instant;

use crate::support::{disk_image, ms, percentile, serve_with_image, timed_convert};
use nuage_e2e::Scratch;
use serde_json::json;

pub(crate) async fn bench_create(uri: &str) {
    // A temp dir QEMU (another user under qemu:///system) can traverse.
    let work = Scratch::new("nuage-bench-img-");
    let image = disk_image(work.path(), false);
    let (app, _url, dir, api, image_id) = serve_with_image(uri, &work, &image).await;
    let mut linked = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let body = json!({"name": format!("linked-{i}"), "image_id": image_id, "vcpus": 1, "memory_mib": 256, "disk_gib": 3});
        let (_, vm) = api.post("/api/v1/vms", body).await;
        linked.push(t.elapsed());
        assert_eq!(vm["state"], "running", "{vm}");
        let id = vm["id"].as_str().unwrap();
        api.delete(&format!("/api/v1/vms/{id}")).await;
    }
    let mut full = Vec::new();
    for i in 0..3 {
        full.push(timed_convert(
            &image,
            &dir.path().join(format!("full-{i}.qcow2")),
            false,
        ));
    }
    println!("| image | create to `running` with a linked clone (nuaged, whole API call) | full copy of the disk alone (`qemu-img convert`) |");
    println!("|---|---|---|");
    println!(
        "| 2 GiB qcow2, 1 GiB of data, on {uri} | {} (median of 3) | {} (median of 3) |",
        ms(percentile(&mut linked, 0.5)),
        ms(percentile(&mut full, 0.5))
    );
    // The daemon's network outlives it by design; this one was the benchmark's.
    let (hv, net) = (app.hv.clone(), app.network().name.clone());
    let _ = tokio::task::spawn_blocking(move || hv.remove_network(&net)).await;
}
