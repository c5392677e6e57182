//! The console view: a ticket, a WebSocket to the daemon's relay, the sans-I/O `rfb` client, and
//! a canvas on which only the rectangles that changed are drawn. Keyboard and pointer go back as
//! RFB events; the status line says connecting / connected / closed and why.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use rfb::keys::{keysym_for_key, xt_scancode_for_code, CTRL_ALT_DEL, CTRL_ALT_DEL_SCANCODES};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{Clamped, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    CanvasRenderingContext2d, CloseEvent, HtmlCanvasElement, ImageData, MessageEvent, WebSocket,
};

use crate::api;
use crate::paint::paint;
use crate::session::use_auth;

/// One live connection.
struct Live {
    client: rfb::Client,
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
    fn flush(&mut self) {
        let out = self.client.take_output();
        if !out.is_empty() {
            let _ = self.ws.send_with_u8_array(&out);
        }
    }
}

/// The connection slot, shared by the socket's callbacks and the page's handlers. Dropping the
/// handle closes the socket and frees the callbacks.
#[derive(Clone, Default)]
struct Slot(Rc<RefCell<Option<Live>>>);

struct Handle(Slot);

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(live) = self.0 .0.borrow_mut().take() {
            live.ws.set_onmessage(None);
            live.ws.set_onclose(None);
            let _ = live.ws.close();
        }
    }
}

/// Maps DOM mouse buttons (1 left, 2 right, 4 middle) to RFB's (1 left, 2 middle, 4 right).
fn rfb_buttons(dom: u16) -> u8 {
    u8::try_from((dom & 1) | ((dom & 4) >> 1) | ((dom & 2) << 1)).unwrap_or(0)
}

/// The signals the connection's events update.
#[derive(Clone, Copy)]
struct Ui {
    status: RwSignal<String>,
    /// Keys go as scancodes.
    scancodes: RwSignal<bool>,
    /// The guest's Caps Lock LED.
    caps: RwSignal<bool>,
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

/// The RFB button mask for one wheel step: 8 up, 16 down, 32 left, 64 right; 0 for none.
fn wheel_button(dx: f64, dy: f64) -> u8 {
    if dy < 0.0 {
        8
    } else if dy > 0.0 {
        16
    } else if dx < 0.0 {
        32
    } else if dx > 0.0 {
        64
    } else {
        0
    }
}

#[component]
pub fn ConsoleView(vm_id: String) -> impl IntoView {
    let auth = use_auth();
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();
    let status = RwSignal::new("connecting…".to_owned());
    let one_to_one = RwSignal::new(false);
    // Whether keys go as scancodes, and the guest's Caps Lock LED (both from the server).
    let (scancodes, caps) = (RwSignal::new(false), RwSignal::new(false));
    let slot = Slot::default();
    StoredValue::new_local(Handle(slot.clone()));
    let ui = Ui {
        status,
        scancodes,
        caps,
    };

    let connect = {
        let slot = slot.clone();
        move || {
            let (slot, id, token) = (slot.clone(), vm_id.clone(), auth.token());
            status.set("connecting…".into());
            spawn_local(async move {
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
            });
        }
    };
    connect();

    let with_live = {
        let slot = slot.clone();
        move |f: &mut dyn FnMut(&mut Live)| {
            if let Some(live) = slot.0.borrow_mut().as_mut() {
                f(live);
                live.flush();
            }
        }
    };
    let key = {
        let with_live = with_live.clone();
        move |ev: web_sys::KeyboardEvent, down: bool| {
            // The physical key (for servers that take scancodes) and the character (for those
            // that take keysyms); the client sends whichever the server speaks.
            let (ks, sc) = (keysym_for_key(&ev.key()), xt_scancode_for_code(&ev.code()));
            if ks.is_some() || sc.is_some() {
                ev.prevent_default();
                with_live(&mut |l| l.client.key_event(ks, sc, down));
            }
        }
    };
    // Where on the guest's screen the mouse is: the canvas may be scaled to fit. Non-negative,
    // and a float-to-int `as` saturates: the guest clamps to its screen.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let at = move |ev: &web_sys::MouseEvent| -> Option<(u16, u16)> {
        let canvas = canvas_ref.get_untracked()?;
        let (cw, ch) = (
            canvas.client_width().max(1) as f64,
            canvas.client_height().max(1) as f64,
        );
        let x = (ev.offset_x().max(0) as f64 * canvas.width() as f64 / cw) as u16;
        let y = (ev.offset_y().max(0) as f64 * canvas.height() as f64 / ch) as u16;
        Some((x, y))
    };
    let pointer = {
        let with_live = with_live.clone();
        move |ev: web_sys::MouseEvent| {
            let Some((x, y)) = at(&ev) else { return };
            with_live(&mut |l| l.client.pointer(x, y, rfb_buttons(ev.buttons())));
        }
    };
    // The wheel: RFB buttons 4/5 (up/down) and 6/7 (left/right), pressed and released.
    let wheel = {
        let with_live = with_live.clone();
        move |ev: web_sys::WheelEvent| {
            let Some((x, y)) = at(&ev) else { return };
            ev.prevent_default();
            let held = rfb_buttons(ev.buttons());
            let step = wheel_button(ev.delta_x(), ev.delta_y());
            with_live(&mut |l| {
                if step != 0 {
                    l.client.pointer(x, y, held | step);
                    l.client.pointer(x, y, held);
                }
            });
        }
    };
    let ctrl_alt_del = {
        let with_live = with_live.clone();
        move |_| {
            with_live(&mut |l| {
                let keys = CTRL_ALT_DEL.into_iter().zip(CTRL_ALT_DEL_SCANCODES);
                for (ks, sc) in keys.clone() {
                    l.client.key_event(Some(ks), Some(sc), true);
                }
                for (ks, sc) in keys.rev() {
                    l.client.key_event(Some(ks), Some(sc), false);
                }
            })
        }
    };
    // Paste as keystrokes: for guests with no clipboard agent (a login prompt, an installer).
    let paste_open = RwSignal::new(false);
    let paste_text = RwSignal::new(String::new());
    let type_it = {
        let with_live = with_live.clone();
        move |_| {
            let text = paste_text.get_untracked();
            with_live(&mut |l| {
                l.client.type_text(&text);
            });
            paste_text.set(String::new());
            paste_open.set(false);
        }
    };
    let (key_down, key_up) = (key.clone(), key);
    let (p1, p2, p3) = (pointer.clone(), pointer.clone(), pointer);

    view! {
        <div class="console">
            <div class="console-bar">
                <span id="console-status" class="muted">{move || status.get()}</span>
                <span>
                    <button class="secondary" on:click=ctrl_alt_del>"Ctrl-Alt-Del"</button>" "
                    <button class="secondary" on:click=move |_| one_to_one.update(|v| *v = !*v)>
                        {move || if one_to_one.get() { "Scale to fit" } else { "1:1" }}
                    </button>" "
                    <button class="secondary" on:click=move |_| {
                        if let Some(c) = canvas_ref.get_untracked() { let _ = c.request_fullscreen(); }
                    }>"Full screen"</button>" "
                    <button class="secondary" id="console-reconnect" on:click=move |_| connect()>"Reconnect"</button>" "
                    <button class="secondary" id="paste-open" on:click=move |_| paste_open.update(|v| *v = !*v)>"Type text…"</button>
                </span>
            </div>
            <div class="row" id="paste" style:display=move || if paste_open.get() { "flex" } else { "none" }>
                <textarea id="paste-text" rows="3" placeholder="Text to type into the guest, key by key"
                    prop:value=move || paste_text.get() on:input=move |ev| paste_text.set(event_target_value(&ev))></textarea>
                <button id="paste-type" on:click=type_it>"Type it"</button>
            </div>
            <canvas id="console-canvas" node_ref=canvas_ref tabindex="0"
                class=move || if one_to_one.get() { "screen one-to-one" } else { "screen" }
                on:keydown=move |ev| key_down(ev, true)
                on:keyup=move |ev| key_up(ev, false)
                on:mousemove=p1
                on:mousedown=p2
                on:mouseup=p3
                on:wheel=wheel
                on:contextmenu=|ev| ev.prevent_default()></canvas>
            <p class="muted" id="console-keys">
                {move || if scancodes.get() {
                    "Click the screen to type into it. Keys travel as scancodes: the guest's own keyboard layout applies."
                } else {
                    "Click the screen to type into it. Keys travel as keysyms."
                }}
                {move || caps.get().then_some(" Caps Lock is on.")}
            </p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn mouse_buttons_map_to_rfb_order() {
        assert_eq!(rfb_buttons(0), 0);
        assert_eq!(rfb_buttons(1), 1, "left");
        assert_eq!(rfb_buttons(2), 4, "right");
        assert_eq!(rfb_buttons(4), 2, "middle");
        assert_eq!(rfb_buttons(7), 7);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn wheel_steps_map_to_rfb_buttons_4_to_7() {
        assert_eq!(wheel_button(0.0, -3.0), 8, "up");
        assert_eq!(wheel_button(0.0, 100.0), 16, "down");
        assert_eq!(wheel_button(-1.0, 0.0), 32, "left");
        assert_eq!(wheel_button(5.0, 0.0), 64, "right");
        assert_eq!(wheel_button(0.0, 0.0), 0);
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
        update.extend_from_slice(&[(len & 0x7f) as u8 | 0x80, (len >> 7) as u8]);
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
