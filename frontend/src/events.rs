//! Live updates: the `/api/v1/events` WebSocket, and the pure reducer that applies its messages to
//! the list of servers on screen.

use nuage_shared::{Event, Vm};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// What the page must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The list changed (or not) and is up to date.
    Updated,
    /// Events were lost: fetch the list again.
    Reload,
}

/// Applies one event to `vms` (kept sorted by name, as the daemon lists them).
pub fn apply(vms: &mut Vec<Vm>, ev: &Event) -> Applied {
    match ev {
        Event::VmState {
            vm_id,
            state,
            stop_reason,
            ..
        } => {
            if let Some(vm) = vms.iter_mut().find(|v| &v.id == vm_id) {
                vm.state = *state;
                vm.stop_reason = *stop_reason;
            }
        }
        Event::VmUpdated { vm } => match vms.iter_mut().find(|v| v.id == vm.id) {
            Some(existing) => *existing = (**vm).clone(),
            None => {
                vms.push((**vm).clone());
                vms.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            }
        },
        Event::VmDeleted { vm_id } => vms.retain(|v| &v.id != vm_id),
        // Usage samples and job progress change no row of the list; the server page shows them.
        Event::Metrics { .. } | Event::Job { .. } => {}
        Event::Lagged { .. } => return Applied::Reload,
    }
    Applied::Updated
}

/// An events socket (opened once its ticket arrives); dropping it stops the updates.
pub struct EventStream {
    state: std::rc::Rc<std::cell::RefCell<Socket>>,
}

enum Socket {
    /// Waiting for the ticket.
    Pending,
    /// The socket, and its message handler (kept as long as the socket lives).
    Open(
        web_sys::WebSocket,
        #[allow(dead_code)] Closure<dyn FnMut(web_sys::MessageEvent)>,
    ),
    /// Dropped before the ticket arrived: open nothing.
    Dropped,
}

impl EventStream {
    /// Asks for a single-use events ticket with `token` (a login token never goes in a URL),
    /// then opens the socket; `on_event` receives each message the console understands.
    pub fn open(token: &str, on_event: impl FnMut(Event) + 'static) -> Option<EventStream> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().ok()?;
        let state = std::rc::Rc::new(std::cell::RefCell::new(Socket::Pending));
        let (token, pending) = (token.to_owned(), state.clone());
        leptos::task::spawn_local(async move {
            let Ok(text) = crate::api::call(&token, "POST", "/events/ticket", None).await else {
                return;
            };
            let Ok(ticket) = serde_json::from_str::<nuage_shared::ConsoleTicket>(&text) else {
                return;
            };
            if !matches!(*pending.borrow(), Socket::Pending) {
                return;
            }
            let Ok(socket) = web_sys::WebSocket::new(&format!("{scheme}://{host}{}", ticket.url))
            else {
                return;
            };
            let mut on_event = on_event;
            let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                move |msg: web_sys::MessageEvent| {
                    if let Some(text) = msg.data().as_string() {
                        if let Ok(ev) = serde_json::from_str::<Event>(&text) {
                            on_event(ev);
                        }
                    }
                },
            );
            socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            *pending.borrow_mut() = Socket::Open(socket, on_message);
        });
        Some(EventStream { state })
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Socket::Open(socket, _) =
            std::mem::replace(&mut *self.state.borrow_mut(), Socket::Dropped)
        {
            socket.set_onmessage(None);
            let _ = socket.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuage_shared::VmState;

    fn vm(id: &str, name: &str, state: VmState) -> Vm {
        Vm {
            id: id.into(),
            name: name.into(),
            owner_id: "o".into(),
            host_id: "h".into(),
            state,
            vcpus: 1,
            memory_mib: 256,
            disk_gib: 1,
            image_id: "i".into(),
            hostname: name.into(),
            created_at: String::new(),
            ip_addresses: vec![],
            pending: None,
            mac_address: None,
            limits: Default::default(),
            limit_overrides: Default::default(),
            stop_reason: None,
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn events_update_insert_and_remove_servers() {
        let mut list = vec![vm("1", "b", VmState::Running)];
        let state = Event::VmState {
            vm_id: "1".into(),
            state: VmState::Stopped,
            at: String::new(),
            stop_reason: Some(nuage_shared::StopReason::ShutDown),
        };
        assert_eq!(apply(&mut list, &state), Applied::Updated);
        assert_eq!(list[0].state, VmState::Stopped);
        apply(
            &mut list,
            &Event::VmUpdated {
                vm: Box::new(vm("2", "a", VmState::Running)),
            },
        );
        assert_eq!(
            list.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"],
            "kept sorted by name"
        );
        apply(
            &mut list,
            &Event::VmUpdated {
                vm: Box::new(vm("2", "c", VmState::Paused)),
            },
        );
        assert_eq!(list.len(), 2);
        apply(&mut list, &Event::VmDeleted { vm_id: "1".into() });
        assert_eq!(list.len(), 1);
        // An event about a server not on screen changes nothing.
        apply(
            &mut list,
            &Event::VmState {
                vm_id: "9".into(),
                state: VmState::Running,
                at: String::new(),
                stop_reason: None,
            },
        );
        assert_eq!(list.len(), 1);
        assert_eq!(
            apply(&mut list, &Event::Lagged { missed: 3 }),
            Applied::Reload
        );
    }
}
