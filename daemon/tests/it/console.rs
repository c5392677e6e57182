//! Console tickets on the real server: issued only for a running server of one's own, refused
//! before any upgrade when missing, forged, used, or meant for another server.

use serde_json::json;
use tokio_tungstenite::tungstenite;

use crate::support::TestServer;

async fn ws_status(server: &TestServer, path: &str) -> u16 {
    let url = format!("ws://{}{path}", server.addr);
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("websocket: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn console_tickets_are_single_use_bound_and_checked_before_the_upgrade() {
    let server = TestServer::start().await;
    let t = &server.app;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let q = json!({"vcpus": 2, "memory_mib": 1024, "disk_gib": 4, "vms": 2, "snapshots": 0});
    let (alice, _) = t.user_with_quota(&admin, "alice", q.clone()).await;
    let (bob, _) = t.user_with_quota(&admin, "bob", q).await;
    let make = |name: &str, start: bool| {
        json!({"name": name, "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1, "start": start}).to_string()
    };
    let vm = t
        .post("/api/v1/vms", Some(&alice), &make("web", true))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let off = t
        .post("/api/v1/vms", Some(&alice), &make("off", false))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bobs = t
        .post("/api/v1/vms", Some(&bob), &make("bobs", true))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = t
        .post(&format!("/api/v1/vms/{vm}/console"), Some(&alice), "")
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ticket = r.body["ticket"].as_str().unwrap().to_owned();
    assert!(r.body["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/vms/{vm}/console/ws?ticket={ticket}")));
    assert!(r.body["expires_at"].as_str().is_some());
    assert_eq!(
        t.post(&format!("/api/v1/vms/{off}/console"), Some(&alice), "")
            .await
            .status,
        409,
        "a stopped server has no screen"
    );
    assert_eq!(
        t.post(&format!("/api/v1/vms/{vm}/console"), Some(&bob), "")
            .await
            .status,
        404,
        "not bob's"
    );

    // Refused before any upgrade.
    assert_eq!(
        ws_status(&server, &format!("/api/v1/vms/{vm}/console/ws")).await,
        401
    );
    assert_eq!(
        ws_status(
            &server,
            &format!("/api/v1/vms/{vm}/console/ws?ticket=forged")
        )
        .await,
        401
    );
    assert_eq!(
        ws_status(
            &server,
            &format!("/api/v1/vms/{bobs}/console/ws?ticket={ticket}")
        )
        .await,
        401,
        "bound to its server"
    );
    assert_eq!(
        ws_status(
            &server,
            &format!("/api/v1/vms/{vm}/console/ws?ticket={ticket}")
        )
        .await,
        401,
        "burnt by the wrong try"
    );

    // A good ticket passes the checks; the simulated hypervisor has no screen to give (409), and
    // the ticket is then used up.
    let ticket = t
        .post(&format!("/api/v1/vms/{vm}/console"), Some(&alice), "")
        .await
        .body["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ws_status(
            &server,
            &format!("/api/v1/vms/{vm}/console/ws?ticket={ticket}")
        )
        .await,
        409
    );
    assert_eq!(
        ws_status(
            &server,
            &format!("/api/v1/vms/{vm}/console/ws?ticket={ticket}")
        )
        .await,
        401,
        "single use"
    );
    // Console openings are audited.
    let log = t.get(&format!("/api/v1/audit?vm={vm}"), Some(&admin)).await;
    assert!(
        log.text.contains("POST /api/v1/vms/{id}/console"),
        "{}",
        log.text
    );
}
