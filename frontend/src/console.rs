//! The console view: a ticket, a WebSocket to the daemon's relay, the sans-I/O `rfb` client, and
//! a canvas on which only the rectangles that changed are drawn. Keyboard and pointer go back as
//! RFB events; the status line says connecting / connected / closed and why.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use rfb::keys::{keysym_for_key, xt_scancode_for_code, CTRL_ALT_DEL, CTRL_ALT_DEL_SCANCODES};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{
    CanvasRenderingContext2d, CloseEvent, HtmlCanvasElement, ImageData, MessageEvent, WebSocket,
};

use crate::api;
use crate::session::use_auth;

/// One live connection.
struct Live {
    client: rfb::Client,
    ws: WebSocket,
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
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

    /// Copies one rectangle of the framebuffer to the canvas.
    fn draw(&self, x: u16, y: u16, w: u16, h: u16) {
        if w == 0 || h == 0 {
            return;
        }
        let (fb, stride) = (self.client.framebuffer(), self.client.width() as usize * 4);
        let mut rect = Vec::with_capacity(w as usize * h as usize * 4);
        for row in y as usize..(y + h) as usize {
            let start = row * stride + x as usize * 4;
            rect.extend_from_slice(&fb[start..start + w as usize * 4]);
        }
        if let Ok(img) =
            ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rect), w.into(), h.into())
        {
            let _ = self.ctx.put_image_data(&img, x.into(), y.into());
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
    ((dom & 1) | ((dom & 4) >> 1) | ((dom & 2) << 1)) as u8
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
                        match live.client.receive(&bytes) {
                            Ok(events) => {
                                for ev in events {
                                    match ev {
                                        rfb::Event::Connected { width, height, .. }
                                        | rfb::Event::Resized { width, height } => {
                                            live.canvas.set_width(width.into());
                                            live.canvas.set_height(height.into());
                                            live.draw(0, 0, width, height);
                                            status.set(format!("connected ({width}×{height})"));
                                        }
                                        rfb::Event::Damage {
                                            x,
                                            y,
                                            width,
                                            height,
                                        } => live.draw(x, y, width, height),
                                        rfb::Event::ExtendedKeys => scancodes.set(true),
                                        rfb::Event::Leds { caps_lock, .. } => caps.set(caps_lock),
                                        _ => {}
                                    }
                                }
                                live.flush();
                            }
                            Err(e) => {
                                status.set(format!("closed: {e}"));
                                let _ = live.ws.close();
                            }
                        }
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
                    client: rfb::Client::new(),
                    ws,
                    canvas,
                    ctx,
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
    let pointer = {
        let with_live = with_live.clone();
        move |ev: web_sys::MouseEvent| {
            let Some(canvas) = canvas_ref.get_untracked() else {
                return;
            };
            let (cw, ch) = (
                canvas.client_width().max(1) as f64,
                canvas.client_height().max(1) as f64,
            );
            let x = (ev.offset_x().max(0) as f64 * canvas.width() as f64 / cw) as u16;
            let y = (ev.offset_y().max(0) as f64 * canvas.height() as f64 / ch) as u16;
            with_live(&mut |l| l.client.pointer(x, y, rfb_buttons(ev.buttons())));
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
}
