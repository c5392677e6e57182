//! Images: import, list, delete.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn admins_import_images_that_everyone_can_list() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let id = t.import_raw_image(&admin, "tiny", 16).await;
    let (alice, _) = t
        .user_with_quota(
            &admin,
            "alice",
            json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0}),
        )
        .await;
    let list = t.get("/api/v1/images", Some(&alice)).await;
    assert_eq!(list.status, StatusCode::OK);
    let images = list.body.as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["id"], id.as_str());
    assert_eq!(images[0]["format"], "raw");
    assert_eq!(images[0]["virtual_size_bytes"], 16u64 << 20);
    assert!(images[0].get("path").is_none(), "file paths are not shown");
    // The image was copied into the store: the import file may go away.
    std::fs::remove_file(t.data_dir.join("import/tiny.raw")).unwrap();
    assert!(t.data_dir.join(format!("images/{id}.raw")).is_file());

    // Users cannot import or delete.
    let r = t
        .post(
            "/api/v1/images",
            Some(&alice),
            r#"{"name":"x","path":"/tmp/x"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .send(
            Method::DELETE,
            &format!("/api/v1/images/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn only_disk_images_inside_the_import_dirs_are_imported() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let import = t.data_dir.join("import");
    std::fs::write(import.join("notes.txt"), b"").unwrap();
    let outside = t.data_dir.join("outside.raw");
    std::fs::File::create(&outside)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    std::os::unix::fs::symlink(&outside, import.join("sneaky.raw")).unwrap();
    let cases = [
        (json!({"name": "a", "path": outside.to_str().unwrap()}), 422),
        (
            json!({"name": "a", "path": format!("{}/../outside.raw", import.display())}),
            422,
        ),
        (
            json!({"name": "a", "path": import.join("sneaky.raw").to_str().unwrap()}),
            422,
        ),
        (json!({"name": "a", "path": "/etc/passwd"}), 422),
        (
            json!({"name": "a", "path": import.join("notes.txt").to_str().unwrap()}),
            422,
        ),
        (
            json!({"name": "a", "path": import.join("missing.raw").to_str().unwrap()}),
            422,
        ),
        (
            json!({"name": "Bad Name", "path": outside.to_str().unwrap()}),
            422,
        ),
        (json!({"name": "a"}), 400),
    ];
    for (body, status) in cases {
        let r = t
            .post("/api/v1/images", Some(&admin), &body.to_string())
            .await;
        assert_eq!(r.status.as_u16(), status, "{body} -> {}", r.text);
        assert!(
            !r.text.contains("/etc"),
            "no file-system text in errors: {}",
            r.text
        );
    }
    assert_eq!(t.get("/api/v1/images", Some(&admin)).await.body, json!([]));
    assert_eq!(
        std::fs::read_dir(t.data_dir.join("images"))
            .unwrap()
            .count(),
        0
    );

    t.import_raw_image(&admin, "dup", 1).await;
    let again = t.data_dir.join("import/dup2.raw");
    std::fs::File::create(&again)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let r = t
        .post(
            "/api/v1/images",
            Some(&admin),
            &json!({"name": "dup", "path": again.to_str().unwrap()}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_image_in_use_cannot_be_deleted() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let image = t.import_raw_image(&admin, "base", 16).await;
    let vm =
        json!({"name": "web", "image_id": image, "vcpus": 1, "memory_mib": 256, "disk_gib": 1});
    let r = t.post("/api/v1/vms", Some(&admin), &vm.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let vm_id = r.body["id"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/images/{image}");
    assert_eq!(
        t.send(Method::DELETE, &path, Some(&admin), None)
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        t.send(
            Method::DELETE,
            &format!("/api/v1/vms/{vm_id}"),
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.send(Method::DELETE, &path, Some(&admin), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.send(Method::DELETE, &path, Some(&admin), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(!t.data_dir.join(format!("images/{image}.raw")).exists());
}

#[tokio::test]
async fn admins_upload_images_that_are_validated_like_imports() {
    let t = TestApp::new().await;
    let admin = t.admin_token().await;
    let upload = |name: &str, bytes: Vec<u8>, token: &str| {
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/images/upload?name={name}&os=test"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .body(axum::body::Body::from(bytes))
            .unwrap();
        let router = t.router.clone();
        async move {
            use tower::ServiceExt;
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default(),
            )
        }
    };
    // Larger than the 1 MiB JSON limit: uploads are streamed.
    let (status, body) = upload("zeros", vec![0u8; 3 << 20], &admin).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["format"], "raw");
    assert_eq!(body["virtual_size_bytes"], 3u64 << 20);
    assert_eq!(body["os"], "test");

    let qcow = t.data_dir.join("q.qcow2");
    assert!(std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&qcow)
        .arg("32M")
        .status()
        .unwrap()
        .success());
    let (status, body) = upload("small-qcow", std::fs::read(&qcow).unwrap(), &admin).await;
    assert_eq!(
        (status, body["format"].as_str()),
        (StatusCode::CREATED, Some("qcow2"))
    );

    let (status, _) = upload("text", b"hello, not a disk".to_vec(), &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = upload("empty", Vec::new(), &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = upload("zeros", vec![0u8; 512], &admin).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = upload("Bad/Name", vec![0u8; 512], &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (alice, _) = t
        .user_with_quota(
            &admin,
            "alice",
            json!({"vcpus": 1, "memory_mib": 256, "disk_gib": 1, "vms": 1, "snapshots": 0}),
        )
        .await;
    let (status, _) = upload("mine", vec![0u8; 512], &alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Only the two accepted images are in the store: no partial upload is left behind.
    let mut files: Vec<String> = std::fs::read_dir(t.data_dir.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| !f.starts_with(".upload")), "{files:?}");
}
