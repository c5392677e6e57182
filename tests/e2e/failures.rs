//! A server that dies: its QEMU killed (a crash) or killed by the kernel for memory. The API, the
//! events and the audit log say why it stopped.

use std::time::Duration;

use futures_util::StreamExt;
use nuage_e2e::{qemu_pid, virsh, wait_until, Daemon};
use serde_json::json;

async fn running_server(
    daemon: &Daemon,
    admin: &nuage_e2e::Api,
    image: &str,
    name: &str,
) -> (nuage_e2e::Api, String) {
    let quota = json!({"vcpus": 2, "memory_mib": 512, "disk_gib": 2, "vms": 2, "snapshots": 0});
    let alice = daemon.user(admin, name, "alice-pass", quota).await;
    let (id, _) = alice.create_small_vm(image, json!({"name": name})).await;
    (alice, id)
}

/// The owner's events socket (through a ticket).
async fn events(daemon: &Daemon, api: &nuage_e2e::Api) -> impl futures_util::Stream<Item = String> {
    let (status, t) = api.post("/api/v1/events/ticket", json!({})).await;
    assert_eq!(status, 201, "{t}");
    let url = daemon
        .url(t["url"].as_str().unwrap())
        .replacen("http://", "ws://", 1);
    let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.filter_map(|m| async move {
        match m {
            Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => Some(t.to_string()),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_or_memory_killed_server_says_why_it_stopped() {
    let (daemon, admin, image) = Daemon::with_guest_image(&[]).await;
    for (name, how) in [("crashy", "crashed"), ("eat-memory", "killed_for_memory")] {
        let (alice, id) = running_server(&daemon, &admin, &image, name).await;
        let domain = format!("nuage-{id}");
        let mut ev = Box::pin(events(&daemon, &alice).await);
        let pid = qemu_pid(&domain).expect("QEMU runs");
        if how == "crashed" {
            // SIGKILL: QEMU dies without a word, as it does when it crashes.
            assert!(std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap()
                .success());
        } else {
            // Once the guest is up, its memory cgroup's limit is cut to a little more than QEMU
            // holds; then the guest fills 150 MiB and the kernel kills its QEMU.
            let serial = daemon.data_dir().join("vms").join(&id).join("serial.log");
            let ready = std::time::Instant::now();
            while !std::fs::read_to_string(&serial)
                .unwrap_or_default()
                .contains("NUAGE-GUEST-READY")
            {
                assert!(
                    ready.elapsed() < Duration::from_secs(90),
                    "the guest never got ready"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let rss_kib = nuage_e2e::proc_status_kib(u32::try_from(pid).unwrap(), "VmRSS")
                .expect("QEMU's RSS");
            let limit = (rss_kib + 32 * 1024).to_string();
            virsh(&["memtune", &domain, "--hard-limit", &limit, "--live"]);
        }
        let vm = wait_until(
            &alice,
            &format!("/api/v1/vms/{id}"),
            Duration::from_secs(120),
            |v| v["state"] == "stopped",
        )
        .await;
        assert_eq!(vm["state"], "stopped", "{vm}");
        assert_eq!(vm["stop_reason"], how, "{vm}");
        // The owner heard it, with the reason.
        let heard = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(text) = ev.next().await {
                if text.contains(&id) && text.contains("\"vm_state\"") && text.contains("stopped") {
                    return text;
                }
            }
            String::new()
        })
        .await
        .expect("a vm_state event");
        assert!(
            heard.contains(&format!("\"stop_reason\":\"{how}\"")),
            "{heard}"
        );
        // And the audit log has it.
        let (_, log) = admin.get(&format!("/api/v1/audit?vm={id}")).await;
        assert!(
            log.as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == format!("vm.{how}")),
            "{log}"
        );
    }
}
