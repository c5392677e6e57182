//! The browser decoding benchmark's side of the `rfb` client: a session fed recorded server
//! bytes, drawing each update on a canvas with the console's own code (`frontend/src/paint.rs`),
//! so the figure includes the canvas work noVNC's includes too.

use wasm_bindgen::prelude::*;
use web_sys::CanvasRenderingContext2d;

// The console's own drawing code, so that this measures exactly what the console does.
#[path = "../../../frontend/src/paint.rs"]
mod paint;

#[wasm_bindgen]
pub struct Session {
    client: rfb::Client,
    dirty: rfb::Dirty,
}

#[wasm_bindgen]
impl Session {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Session {
        let mut client = rfb::Client::new();
        client.hand_off_jpeg();
        Session {
            client,
            dirty: rfb::Dirty::default(),
        }
    }

    /// Feeds server bytes and draws nothing (to tell decoding from the canvas's work); returns
    /// the number of events.
    pub fn decode_only(&mut self, bytes: &[u8]) -> Result<u32, JsValue> {
        let events = self
            .client
            .receive(bytes)
            .map_err(|e| JsValue::from_str(&e.to_string()))?;
        Ok(u32::try_from(events.len()).unwrap_or(u32::MAX))
    }

    /// Feeds server bytes and draws what changed; returns the complete updates among them.
    pub fn feed(&mut self, bytes: &[u8], ctx: &CanvasRenderingContext2d) -> Result<u32, JsValue> {
        let events = self
            .client
            .receive(bytes)
            .map_err(|e| JsValue::from_str(&e.to_string()))?;
        let mut frames = 0;
        for ev in events {
            match ev {
                rfb::Event::Damage { .. } | rfb::Event::Fill { .. } => self.dirty.add(&ev),
                rfb::Event::UpdateDone => {
                    frames += 1;
                    paint::paint(&self.client, ctx, &self.dirty.take());
                }
                rfb::Event::Jpeg { .. } => {
                    return Err("a JPEG rectangle: this replay draws none".into());
                }
                _ => {}
            }
        }
        Ok(frames)
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}
