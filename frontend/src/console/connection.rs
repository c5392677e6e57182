//! The connection: a console ticket, the relay's WebSocket, the sans-I/O `rfb` client fed from
//! it, and what its events do to the canvas (drawn once per update), the status line, the CSS
//! cursor and the browser's JPEG decoder.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{Clamped, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    CanvasRenderingContext2d, CloseEvent, HtmlCanvasElement, ImageData, MessageEvent, WebSocket,
};

use crate::api;
use crate::paint::paint;
use crate::session::Auth;

/// One live connection.
pub(super) struct Live {
    pub(super) client: rfb::Client,
    ws: WebSocket,
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    /// What the update being received has changed so far (drawn when it is complete).
    dirty: rfb::Dirty,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Live {
    /// Sends what the client queued.
    pub(super) fn flush(&mut self) {
        let out = self.client.take_output();
        if !out.is_empty() {
            let _ = self.ws.send_with_u8_array(&out);
        }
    }
}

/// The connection slot, shared by the socket's callbacks and the page's handlers. Dropping the
/// handle closes the socket and frees the callbacks.
#[derive(Clone, Default)]
pub(super) struct Slot(pub(super) Rc<RefCell<Option<Live>>>);

pub(super) struct Handle(pub(super) Slot);

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(live) = self.0 .0.borrow_mut().take() {
            live.ws.set_onmessage(None);
            live.ws.set_onclose(None);
            let _ = live.ws.close();
        }
    }
}

/// The signals the connection's events update.
#[derive(Clone, Copy)]
pub(super) struct Ui {
    pub(super) status: RwSignal<String>,
    /// Keys go as scancodes.
    pub(super) scancodes: RwSignal<bool>,
    /// The guest's Caps Lock LED.
    pub(super) caps: RwSignal<bool>,
}

impl Live {
    /// Acts on what the client made of the server's bytes: draws, updates the status, hands JPEG
    /// to the browser's decoder, and sends what the client queued; on an error, closes.
    fn apply(&mut self, result: Result<Vec<rfb::Event>, rfb::Error>, slot: &Slot, ui: Ui) {
        let events = match result {
            Ok(events) => events,
            Err(e) => {
                ui.status.set(format!("closed: {e}"));
                let _ = self.ws.close();
                return;
            }
        };
        for ev in events {
            match ev {
                rfb::Event::Connected { width, height, .. }
                | rfb::Event::Resized { width, height } => {
                    self.canvas.set_width(width.into());
                    self.canvas.set_height(height.into());
                    paint(
                        &self.client,
                        &self.ctx,
                        &[rfb::Paint::Copy((0, 0, width, height))],
                    );
                    ui.status.set(format!("connected ({width}×{height})"));
                }
                rfb::Event::Damage { .. } | rfb::Event::Fill { .. } => self.dirty.add(&ev),
                rfb::Event::UpdateDone => paint(&self.client, &self.ctx, &self.dirty.take()),
                rfb::Event::Jpeg {
                    width,
                    height,
                    data,
                    ..
                } => {
                    let (slot, ws) = (slot.clone(), self.ws.clone());
                    spawn_local(async move {
                        let pixels = browser_jpeg(width, height, &data).await;
                        let mut guard = slot.0.borrow_mut();
                        // The connection may have been replaced meanwhile: then drop it.
                        let Some(live) = guard.as_mut().filter(|l| l.ws == ws) else {
                            return;
                        };
                        let result = match pixels {
                            Ok(px) => live.client.jpeg_decoded(&px),
                            Err(e) => Err(rfb::Error::Protocol(format!(
                                "the browser cannot decode a JPEG rectangle ({e:?})"
                            ))),
                        };
                        live.apply(result, &slot, ui);
                    });
                }
                rfb::Event::Cursor {
                    hotspot_x,
                    hotspot_y,
                    width,
                    height,
                    rgba,
                } => {
                    let css = cursor_css(width, height, &rgba)
                        .map(|url| format!("url({url}) {hotspot_x} {hotspot_y}, default"))
                        .unwrap_or_else(|| "none".into());
                    let _ = web_sys::HtmlElement::style(&self.canvas).set_property("cursor", &css);
                }
                rfb::Event::ExtendedKeys => ui.scancodes.set(true),
                rfb::Event::Leds { caps_lock, .. } => ui.caps.set(caps_lock),
                _ => {}
            }
        }
        self.flush();
    }
}

/// A scratch canvas of this size and its 2-D context.
fn scratch(w: u16, h: u16) -> Option<(HtmlCanvasElement, CanvasRenderingContext2d)> {
    let doc = web_sys::window()?.document()?;
    let canvas: HtmlCanvasElement = doc.create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(w.into());
    canvas.set_height(h.into());
    let ctx = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    Some((canvas, ctx))
}

/// Decodes a JPEG with the browser's own decoder; its RGBA pixels, which must be `w`×`h`.
async fn browser_jpeg(w: u16, h: u16, data: &[u8]) -> Result<Vec<u8>, JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(data));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts)?;
    let bitmap: web_sys::ImageBitmap = JsFuture::from(window.create_image_bitmap_with_blob(&blob)?)
        .await?
        .dyn_into()?;
    if (bitmap.width(), bitmap.height()) != (w.into(), h.into()) {
        return Err("an image of another size than its rectangle".into());
    }
    let (_, ctx) = scratch(w, h).ok_or("no canvas")?;
    ctx.draw_image_with_image_bitmap(&bitmap, 0.0, 0.0)?;
    Ok(ctx.get_image_data(0.0, 0.0, w.into(), h.into())?.data().0)
}

/// The pointer's image as a `data:` URL for CSS, or `None` for a hidden (0x0) pointer.
fn cursor_css(w: u16, h: u16, rgba: &[u8]) -> Option<String> {
    if w == 0 || h == 0 {
        return None;
    }
    let (canvas, ctx) = scratch(w, h)?;
    let img =
        ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), w.into(), h.into()).ok()?;
    ctx.put_image_data(&img, 0.0, 0.0).ok()?;
    canvas.to_data_url().ok()
}

/// Opens a connection to server `id`'s console with a fresh ticket, drawing on the canvas of
/// `canvas_ref`; replaces (and closes) the slot's previous one.
pub(super) async fn connect(
    slot: Slot,
    id: String,
    auth: Auth,
    canvas_ref: NodeRef<leptos::html::Canvas>,
    ui: Ui,
) {
    let (token, status) = (auth.token(), ui.status);
    let ticket = match api::console_ticket(&token, &id).await {
        Ok(t) => t,
        Err(e) => return status.set(format!("closed: {}", auth.explain(e))),
    };
    let Some(canvas) = canvas_ref.get_untracked() else {
        return;
    };
    let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
    else {
        return status.set("closed: this browser cannot draw on a canvas".into());
    };
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return;
    };
    let scheme = if location.protocol().ok().as_deref() == Some("https:") {
        "wss"
    } else {
        "ws"
    };
    let url = format!(
        "{scheme}://{}{}",
        location.host().unwrap_or_default(),
        ticket.url
    );
    let Ok(ws) = WebSocket::new_with_str(&url, "binary") else {
        return status.set("closed: cannot open the WebSocket".into());
    };
    let mut client = rfb::Client::new();
    // The browser decodes Tight's JPEG rectangles (native code; less wasm to load).
    client.hand_off_jpeg();
    ws.set_binary_type(web_sys::BinaryType::Arraybuffer);
    let on_message = {
        let slot = slot.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |msg: MessageEvent| {
            let Ok(buf) = msg.data().dyn_into::<js_sys::ArrayBuffer>() else {
                return;
            };
            let bytes = js_sys::Uint8Array::new(&buf).to_vec();
            let mut guard = slot.0.borrow_mut();
            let Some(live) = guard.as_mut() else { return };
            let result = live.client.receive(&bytes);
            live.apply(result, &slot, ui);
        })
    };
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
        let why = if ev.reason().is_empty() {
            format!("code {}", ev.code())
        } else {
            ev.reason()
        };
        status.update(|s| {
            if !s.starts_with("closed") {
                *s = format!("closed ({why})");
            }
        });
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    if let Some(old) = slot.0.borrow_mut().replace(Live {
        client,
        ws,
        canvas,
        ctx,
        dirty: rfb::Dirty::default(),
        _on_message: on_message,
        _on_close: on_close,
    }) {
        old.ws.set_onclose(None);
        let _ = old.ws.close();
    }
}

/// The browser's side of Tight JPEG and of the Cursor pseudo-encoding, in a real browser.
#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// What a QEMU server sends for a 16x8 desktop (RFB 3.8, security None, ServerInit).
    fn hello() -> Vec<u8> {
        let mut s = b"RFB 003.008\n".to_vec();
        s.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        s.extend_from_slice(&[0, 16, 0, 8]);
        s.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
        s.extend_from_slice(&[0, 0, 0, 1, b't']);
        s
    }

    /// A JPEG made by the browser: red on the left half, blue on the right.
    fn jpeg() -> Vec<u8> {
        let (canvas, ctx) = scratch(16, 8).unwrap();
        ctx.set_fill_style_str("rgb(255,0,0)");
        ctx.fill_rect(0.0, 0.0, 8.0, 8.0);
        ctx.set_fill_style_str("rgb(0,0,255)");
        ctx.fill_rect(8.0, 0.0, 8.0, 8.0);
        let url = canvas.to_data_url_with_type("image/jpeg").unwrap();
        let b64 = url.split_once(',').unwrap().1;
        let binary = web_sys::window().unwrap().atob(b64).unwrap();
        binary.chars().map(|c| c as u8).collect()
    }

    #[wasm_bindgen_test]
    async fn a_tight_jpeg_rectangle_is_decoded_by_the_browser_and_painted() {
        let jpeg = jpeg();
        let mut update = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 16, 0, 8, 0, 0, 0, 7, 0x90];
        let len = jpeg.len();
        assert!(len < 1 << 14, "a 2-byte compact length");
        let compact = [
            u8::try_from(len & 0x7f).unwrap() | 0x80,
            u8::try_from(len >> 7).unwrap(),
        ];
        update.extend_from_slice(&compact);
        update.extend_from_slice(&jpeg);

        let mut client = rfb::Client::new();
        client.hand_off_jpeg();
        client.receive(&hello()).unwrap();
        let events = client.receive(&update).unwrap();
        let Some(rfb::Event::Jpeg { data, .. }) = events.last() else {
            panic!("{events:?}")
        };
        let pixels = browser_jpeg(16, 8, data).await.unwrap();
        let events = client.jpeg_decoded(&pixels).unwrap();
        assert!(events.contains(&rfb::Event::UpdateDone), "{events:?}");
        let at = |x: usize| {
            let i = (4 * 16 + x) * 4;
            client.framebuffer()[i..i + 3].to_vec()
        };
        let (left, right) = (at(2), at(13));
        assert!(left[0] > 200 && left[2] < 60, "red on the left: {left:?}");
        assert!(
            right[2] > 200 && right[0] < 60,
            "blue on the right: {right:?}"
        );
        // An image of another size than its rectangle is refused.
        assert!(browser_jpeg(8, 8, data).await.is_err());
    }

    #[wasm_bindgen_test]
    fn the_pointer_image_becomes_a_css_cursor() {
        let rgba = [255u8, 0, 0, 255].repeat(4);
        let url = cursor_css(2, 2, &rgba).unwrap();
        assert!(url.starts_with("data:image/png;base64,"), "{url}");
        assert_eq!(cursor_css(0, 0, &[]), None, "a hidden pointer");
    }
}
