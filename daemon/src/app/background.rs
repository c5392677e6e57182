//! Every task that runs beside the requests, started from this one place when the daemon
//! serves: the metrics sampler, housekeeping, the backup scheduler, the restart of servers that
//! should run, the address check, and the feed of libvirt's lifecycle events into the servers'
//! states.

use std::sync::Arc;

use super::App;

impl App {
    /// Starts the background tasks; they live as long as the app.
    pub fn start_background(self: &Arc<Self>) {
        self.start_sampler();
        self.start_housekeeping();
        let app = self.clone();
        tokio::spawn(async move {
            app.recall_pids().await;
            let n = app.restore_running().await;
            if n > 0 {
                tracing::info!(
                    servers = n,
                    "servers running before the restart are running again"
                );
            }
        });
        self.start_scheduler(std::time::Duration::from_secs(30));
        let app = self.clone();
        tokio::spawn(async move {
            match app.assign_missing_addresses().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(servers = n, "gave addresses to servers that had none"),
                Err(e) => {
                    tracing::error!(error = %super::chain(&e), "cannot give servers addresses")
                }
            }
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        if let Err(e) = self.hv.subscribe(tx) {
            tracing::error!(error = %super::chain(&e), "cannot subscribe to libvirt events");
            return;
        }
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Some(app) = app.upgrade() else { break };
                // Each event waits for its server's turn; other servers' events need not wait.
                // Order within a server does not matter: each settles on libvirt's state now.
                tokio::spawn(async move { app.on_domain_event(ev).await });
            }
        });
    }
}
