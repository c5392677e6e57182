//! The console view: the canvas, its bar (Ctrl-Alt-Del, scaling, full screen, reconnect, typing
//! text) and the keyboard and pointer handlers. The connection lives in `connection`, the pure
//! input mappings in `input`.

mod connection;
mod input;

use leptos::prelude::*;
use leptos::task::spawn_local;
use rfb::keys::{keysym_for_key, xt_scancode_for_code};

use crate::session::use_auth;
use connection::{Handle, Live, Slot, Ui};

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
            status.set("connecting…".into());
            spawn_local(connection::connect(
                slot.clone(),
                vm_id.clone(),
                auth,
                canvas_ref,
                ui,
            ));
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
    // Where on the guest's screen the mouse is: the canvas may be scaled to fit.
    let at = move |ev: &web_sys::MouseEvent| -> Option<(u16, u16)> {
        let canvas = canvas_ref.get_untracked()?;
        Some(input::screen_point(
            (ev.offset_x(), ev.offset_y()),
            (canvas.client_width(), canvas.client_height()),
            (canvas.width(), canvas.height()),
        ))
    };
    let pointer = {
        let with_live = with_live.clone();
        move |ev: web_sys::MouseEvent| {
            let Some((x, y)) = at(&ev) else { return };
            with_live(&mut |l| l.client.pointer(x, y, input::rfb_buttons(ev.buttons())));
        }
    };
    // The wheel: RFB buttons 4/5 (up/down) and 6/7 (left/right), pressed and released.
    let wheel = {
        let with_live = with_live.clone();
        move |ev: web_sys::WheelEvent| {
            let Some((x, y)) = at(&ev) else { return };
            ev.prevent_default();
            let held = input::rfb_buttons(ev.buttons());
            let step = input::wheel_button(ev.delta_x(), ev.delta_y());
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
                for (ks, sc, down) in input::ctrl_alt_del() {
                    l.client.key_event(Some(ks), Some(sc), down);
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
