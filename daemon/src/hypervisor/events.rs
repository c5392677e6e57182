//! libvirt's domain lifecycle events, delivered to a channel.
//!
//! The `virt` crate has no safe wrapper for events, so this module holds the little unsafe code
//! needed: libvirt's default event loop runs on a thread of its own (it must be registered before
//! any connection is opened), and a lifecycle callback turns each event into a [`DomainEvent`]
//! sent on an unbounded channel. The channel's sender is owned by libvirt (boxed, freed by libvirt
//! through `free_sender` when the callback is deregistered or the connection closes).

use std::ffi::{c_int, c_void, CStr};
use std::sync::Once;

use tokio::sync::mpsc::UnboundedSender;
use virt::connect::Connect;
use virt::sys;

use super::HvError;

/// What happened to a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainEventKind {
    Started,
    Suspended,
    Resumed,
    /// Powered off, shut down, crashed or failed: the domain no longer runs.
    Stopped,
    /// The definition was removed.
    Undefined,
}

/// How a domain that stopped ended, from libvirt's event detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopDetail {
    /// The guest powered off (an ACPI shutdown it was asked for, or one of its own).
    Shutdown,
    /// Someone powered it off (`virDomainDestroy`).
    Destroyed,
    /// QEMU died: crashed, was killed, or its monitor went away.
    Crashed,
    /// Saved, migrated, snapshotted: not an end of the server.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvent {
    pub name: String,
    pub kind: DomainEventKind,
    /// For [`DomainEventKind::Stopped`]: how.
    pub stop: Option<StopDetail>,
}

fn stop_detail(event: c_int, detail: c_int) -> Option<StopDetail> {
    match sys::virDomainEventType::try_from(event).ok()? {
        sys::VIR_DOMAIN_EVENT_CRASHED => Some(StopDetail::Crashed),
        sys::VIR_DOMAIN_EVENT_STOPPED => Some(
            match sys::virDomainEventStoppedDetailType::try_from(detail).ok()? {
                sys::VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN => StopDetail::Shutdown,
                sys::VIR_DOMAIN_EVENT_STOPPED_DESTROYED => StopDetail::Destroyed,
                sys::VIR_DOMAIN_EVENT_STOPPED_CRASHED | sys::VIR_DOMAIN_EVENT_STOPPED_FAILED => {
                    StopDetail::Crashed
                }
                _ => StopDetail::Other,
            },
        ),
        _ => None,
    }
}

/// Registers libvirt's default event loop and runs it on a dedicated thread, once per process.
pub fn ensure_event_loop() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: called once, before connections are opened (Libvirt::connect calls this first).
        if unsafe { sys::virEventRegisterDefaultImpl() } < 0 {
            tracing::error!("cannot register libvirt's event loop; state changes will be missed");
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| loop {
                // SAFETY: the default implementation was registered above.
                if unsafe { sys::virEventRunDefaultImpl() } < 0 {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start libvirt's event thread");
        }
    });
}

fn kind_of(event: c_int) -> Option<DomainEventKind> {
    match sys::virDomainEventType::try_from(event).ok()? {
        sys::VIR_DOMAIN_EVENT_STARTED => Some(DomainEventKind::Started),
        sys::VIR_DOMAIN_EVENT_SUSPENDED | sys::VIR_DOMAIN_EVENT_PMSUSPENDED => {
            Some(DomainEventKind::Suspended)
        }
        sys::VIR_DOMAIN_EVENT_RESUMED => Some(DomainEventKind::Resumed),
        sys::VIR_DOMAIN_EVENT_STOPPED | sys::VIR_DOMAIN_EVENT_CRASHED => {
            Some(DomainEventKind::Stopped)
        }
        sys::VIR_DOMAIN_EVENT_UNDEFINED => Some(DomainEventKind::Undefined),
        // DEFINED and SHUTDOWN (the guest began or finished shutting down; STOPPED follows).
        _ => None,
    }
}

unsafe extern "C" fn on_lifecycle(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    event: c_int,
    detail: c_int,
    opaque: *mut c_void,
) -> c_int {
    let Some(kind) = kind_of(event) else { return 0 };
    // SAFETY: libvirt passes a valid domain for the duration of the callback; the name it returns
    // is owned by the domain object and must not be freed.
    let name_ptr = unsafe { sys::virDomainGetName(dom) };
    if name_ptr.is_null() {
        return 0;
    }
    // SAFETY: checked non-null above; libvirt's name is a NUL-terminated string that lives as
    // long as the domain, which outlives this callback.
    let name = unsafe { CStr::from_ptr(name_ptr) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: `opaque` is the boxed sender registered in `register`, alive until `free_sender`.
    let tx = unsafe { &*(opaque as *const UnboundedSender<DomainEvent>) };
    let _ = tx.send(DomainEvent {
        name,
        kind,
        stop: stop_detail(event, detail),
    });
    0
}

unsafe extern "C" fn free_sender(opaque: *mut c_void) {
    if !opaque.is_null() {
        // SAFETY: created by Box::into_raw in `register`; libvirt calls this exactly once.
        drop(unsafe { Box::from_raw(opaque as *mut UnboundedSender<DomainEvent>) });
    }
}

/// Subscribes `tx` to every domain's lifecycle events on `conn`.
pub fn register(conn: &Connect, tx: UnboundedSender<DomainEvent>) -> Result<(), HvError> {
    type Lifecycle = unsafe extern "C" fn(
        sys::virConnectPtr,
        sys::virDomainPtr,
        c_int,
        c_int,
        *mut c_void,
    ) -> c_int;
    let opaque = Box::into_raw(Box::new(tx)) as *mut c_void;
    let callback: Lifecycle = on_lifecycle;
    // SAFETY: libvirt calls a registered callback with the signature of the event ID it was
    // registered for (virConnectDomainEventCallback for LIFECYCLE); the generic type is how the
    // C API takes them all.
    let generic: unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void) =
        unsafe { std::mem::transmute::<Lifecycle, _>(callback) };
    // SAFETY: `conn` is a live connection; `generic` has the C signature libvirt expects (see
    // above); `opaque` stays valid until libvirt calls `free_sender` with it.
    let ret = unsafe {
        sys::virConnectDomainEventRegisterAny(
            conn.as_ptr(),
            std::ptr::null_mut(),
            sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
            Some(generic),
            opaque,
            Some(free_sender),
        )
    };
    if ret < 0 {
        // libvirt did not take ownership.
        // SAFETY: libvirt refused the registration, so `opaque` is still ours alone; freed once.
        unsafe { free_sender(opaque) };
        return Err(HvError::Libvirt {
            what: "subscribe to domain events",
            source: virt::error::Error::last_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_events_map_to_kinds() {
        let table = [
            (
                sys::VIR_DOMAIN_EVENT_STARTED,
                Some(DomainEventKind::Started),
            ),
            (
                sys::VIR_DOMAIN_EVENT_SUSPENDED,
                Some(DomainEventKind::Suspended),
            ),
            (
                sys::VIR_DOMAIN_EVENT_RESUMED,
                Some(DomainEventKind::Resumed),
            ),
            (
                sys::VIR_DOMAIN_EVENT_STOPPED,
                Some(DomainEventKind::Stopped),
            ),
            (
                sys::VIR_DOMAIN_EVENT_CRASHED,
                Some(DomainEventKind::Stopped),
            ),
            (
                sys::VIR_DOMAIN_EVENT_UNDEFINED,
                Some(DomainEventKind::Undefined),
            ),
            (sys::VIR_DOMAIN_EVENT_DEFINED, None),
            (sys::VIR_DOMAIN_EVENT_SHUTDOWN, None),
        ];
        for (event, want) in table {
            assert_eq!(kind_of(event as c_int), want, "{event}");
        }
    }
}
