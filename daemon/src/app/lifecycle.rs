//! A server's lifecycle: the one table that says, for a server in a given state (and held or not
//! by a job), what each request does to it. Every path that changes a server asks [`decide`]
//! while holding the server's turn (`turns.rs`), so the answer cannot go stale before the change
//! is recorded with the database's compare-and-set.
//!
//! ```text
//!             create                     start          (libvirt STARTED)
//!  (none) ──────────► creating ──► stopped ─────► starting ──────────────► running
//!                        │            ▲  ▲                                 │ │ │ ▲
//!                        │ failure    │  └──────── stopping ◄── shutdown ──┘ │ │ │
//!                        ▼            │  (libvirt STOPPED)   ◄── stop ───────┘ │ │
//!                      (none)         └───────────────────────── stop ─ paused ┘ │
//!                                                          suspend ─►  │  ◄─ resume
//!  any settled state ── delete ──► deleting ──► (none)
//!  a domain that vanished from libvirt ──► error
//! ```
//!
//! A request is accepted with a [`Plan`], ignored with a reason (nothing to do, or a change in
//! flight will settle the state itself), or denied with a reason the user reads (409).

use nuage_shared::{VmAction, VmState};

use crate::hypervisor::events::DomainEventKind;
use crate::hypervisor::DomainRunState;

/// What is asked of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A power action by its owner or an admin.
    Act(VmAction),
    /// A rename, or a resize when `sizing`.
    Update { sizing: bool },
    /// Deletion.
    Delete,
    /// Work on its disk that needs it settled: a snapshot, a revert, a backup, an export.
    DiskWork,
    /// Deleting one of its snapshots.
    DeleteSnapshot,
    /// Restoring a backup over its disk.
    RestoreInPlace,
    /// A console session.
    Console,
    /// libvirt says the domain is now in this state (a lifecycle event).
    Observed(VmState),
    /// At start, after a daemon that may have died mid-change: libvirt's state of the domain,
    /// `None` when the domain is gone.
    Recover { observed: Option<VmState> },
}

/// How an accepted request proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Record `during` now (compare-and-set), call libvirt, then record `after`.
    Move { during: VmState, after: VmState },
    /// Go ahead in the current state; a resize is `live` when the server runs (vCPUs and memory
    /// wait for its next boot).
    Proceed { live: bool },
    /// Record the state libvirt reports.
    Settle(VmState),
    /// Remove the server: a delete (through `deleting`), or what an interrupted create or delete
    /// left.
    Remove,
}

/// Why a request needs nothing done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// The server is already in that state.
    Unchanged,
    /// A change in flight (creating, starting, deleting) settles the state itself.
    InFlight(VmState),
}

/// Why a request is refused now (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A job holds the server ("A backup", "A restore", "An export").
    Busy(&'static str),
    /// The state does not allow the request.
    NotNow { state: VmState, request: Request },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept(Plan),
    Ignore(Ignored),
    Deny(Denied),
}

use Decision::{Accept, Deny, Ignore};

/// The one transition table. `busy` names the job that holds the server, if one does.
pub fn decide(state: VmState, busy: Option<&'static str>, request: Request) -> Decision {
    use VmState as S;
    let not_now = Deny(Denied::NotNow { state, request });
    let held = |d: Decision| match busy {
        Some(what) => Deny(Denied::Busy(what)),
        None => d,
    };
    let settled = matches!(state, S::Running | S::Paused | S::Stopped);
    match request {
        Request::Act(action) => held(match plan(state, action) {
            Some((during, after)) => Accept(Plan::Move { during, after }),
            None => not_now,
        }),
        // A rename keeps a running server's pending resize pending.
        Request::Update { sizing: false } => Accept(Plan::Proceed {
            live: matches!(state, S::Running | S::Paused),
        }),
        Request::Update { sizing: true } => held(match state {
            S::Stopped => Accept(Plan::Proceed { live: false }),
            S::Running | S::Paused => Accept(Plan::Proceed { live: true }),
            _ => not_now,
        }),
        Request::Delete => held(match state {
            S::Creating | S::Deleting => not_now,
            _ => Accept(Plan::Move {
                during: S::Deleting,
                after: S::Deleting,
            }),
        }),
        Request::DiskWork => held(if settled {
            Accept(Plan::Proceed {
                live: state != S::Stopped,
            })
        } else {
            not_now
        }),
        Request::DeleteSnapshot => held(Accept(Plan::Proceed { live: false })),
        // The state first: a running server is told to stop before being told it is busy.
        Request::RestoreInPlace => match (state, busy) {
            (S::Stopped, Some(what)) => Deny(Denied::Busy(what)),
            (S::Stopped, None) => Accept(Plan::Proceed { live: false }),
            _ => not_now,
        },
        Request::Console => match state {
            S::Running | S::Paused => Accept(Plan::Proceed { live: true }),
            _ => not_now,
        },
        Request::Observed(_) if settles_itself(state) => Ignore(Ignored::InFlight(state)),
        Request::Observed(now) if now == state => Ignore(Ignored::Unchanged),
        Request::Observed(now) => Accept(Plan::Settle(now)),
        Request::Recover { .. } if interrupted(state) => Accept(Plan::Remove),
        Request::Recover { observed } => match (state, observed) {
            (_, None) if state == S::Error => Ignore(Ignored::Unchanged),
            (_, None) => Accept(Plan::Settle(S::Error)),
            (_, Some(now)) if now == state => Ignore(Ignored::Unchanged),
            (_, Some(now)) => Accept(Plan::Settle(now)),
        },
    }
}

/// Whether a change in flight (creating, deleting, starting) will settle the state itself: then
/// libvirt's events about the server are ignored, and need not even be looked into.
pub fn settles_itself(state: VmState) -> bool {
    matches!(
        state,
        VmState::Creating | VmState::Deleting | VmState::Starting
    )
}

/// Whether a record says a create or a delete was under way when the daemon stopped: at start
/// the server is removed, whatever libvirt holds of it.
pub fn interrupted(state: VmState) -> bool {
    matches!(state, VmState::Creating | VmState::Deleting)
}

/// An action's states: the one held while libvirt works and the one once its call returned.
/// `None`: the action is not allowed now.
pub fn plan(state: VmState, action: VmAction) -> Option<(VmState, VmState)> {
    use VmAction as A;
    use VmState as S;
    if !action.allowed_in(state) {
        return None;
    }
    Some(match action {
        A::Start => (S::Starting, S::Running),
        // The guest powers off when it is ready; libvirt's STOPPED event settles `stopped`.
        A::Shutdown => (S::Stopping, S::Stopping),
        A::Stop => (S::Stopping, S::Stopped),
        A::Reboot | A::Reset => (S::Running, S::Running),
        A::Suspend => (S::Paused, S::Paused),
        A::Resume => (S::Running, S::Running),
    })
}

/// The state a libvirt event says a server is in, when libvirt cannot be asked.
pub fn state_after(kind: DomainEventKind) -> VmState {
    match kind {
        DomainEventKind::Started | DomainEventKind::Resumed => VmState::Running,
        DomainEventKind::Suspended => VmState::Paused,
        DomainEventKind::Stopped => VmState::Stopped,
        DomainEventKind::Undefined => VmState::Error,
    }
}

/// The state a domain's run state means.
pub fn settled(run: DomainRunState) -> VmState {
    match run {
        DomainRunState::Running => VmState::Running,
        DomainRunState::Paused => VmState::Paused,
        DomainRunState::ShuttingDown => VmState::Stopping,
        DomainRunState::ShutOff | DomainRunState::Crashed => VmState::Stopped,
        DomainRunState::Other => VmState::Error,
    }
}

impl Denied {
    /// The user's sentence.
    pub fn sentence(&self) -> String {
        match *self {
            Denied::Busy(what) => {
                format!("{what} of this server is in progress; wait for it or cancel its job.")
            }
            Denied::NotNow { state, request } => {
                let s = state.as_str();
                match request {
                    Request::Act(a) => format!("A {s} server cannot {}.", a.name()),
                    Request::Update { sizing: true } => {
                        format!("A {s} server cannot be resized now.")
                    }
                    Request::Delete => format!("A {s} server cannot be deleted now."),
                    Request::RestoreInPlace => {
                        "Stop the server before restoring its disk, or restore as a new server."
                            .into()
                    }
                    Request::Console => format!("A {s} server has no screen to show."),
                    _ => format!("A {s} server cannot do that now."),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VmAction as A;
    use VmState as S;

    const ALL: [VmState; 8] = [
        S::Creating,
        S::Stopped,
        S::Starting,
        S::Running,
        S::Stopping,
        S::Paused,
        S::Deleting,
        S::Error,
    ];

    fn accepted(state: VmState, busy: Option<&'static str>, r: Request) -> Option<Plan> {
        match decide(state, busy, r) {
            Accept(p) => Some(p),
            _ => None,
        }
    }

    #[test]
    fn actions_are_allowed_only_where_they_make_sense() {
        let allowed = [
            (A::Start, vec![S::Stopped]),
            (A::Shutdown, vec![S::Running]),
            (
                A::Stop,
                vec![S::Running, S::Paused, S::Stopping, S::Starting],
            ),
            (A::Reboot, vec![S::Running]),
            (A::Reset, vec![S::Running]),
            (A::Suspend, vec![S::Running]),
            (A::Resume, vec![S::Paused]),
        ];
        for (action, ok) in allowed {
            for s in ALL {
                assert_eq!(
                    accepted(s, None, Request::Act(action)).is_some(),
                    ok.contains(&s),
                    "{action:?} from {s:?}"
                );
            }
        }
        let moved = |s, a| accepted(s, None, Request::Act(a));
        let mv = |during, after| Some(Plan::Move { during, after });
        assert_eq!(moved(S::Stopped, A::Start), mv(S::Starting, S::Running));
        assert_eq!(moved(S::Running, A::Shutdown), mv(S::Stopping, S::Stopping));
        assert_eq!(moved(S::Paused, A::Stop), mv(S::Stopping, S::Stopped));
        assert_eq!(moved(S::Running, A::Suspend), mv(S::Paused, S::Paused));
    }

    #[test]
    fn action_names_parse_and_nothing_else() {
        for n in [
            "start", "shutdown", "stop", "reboot", "reset", "suspend", "resume",
        ] {
            assert_eq!(VmAction::parse(n).unwrap().name(), n);
        }
        assert_eq!(VmAction::parse("destroy"), None);
        assert_eq!(VmAction::parse("Start"), None);
    }

    /// Every request that changes the disk or the power state is refused while a job holds the
    /// server; events, consoles and renames are not.
    #[test]
    fn a_job_holds_the_server_against_changes_but_not_events_or_consoles() {
        let busy = Some("A backup");
        let denied_busy = Deny(Denied::Busy("A backup"));
        for r in [
            Request::Act(A::Start),
            Request::Update { sizing: true },
            Request::Delete,
            Request::DiskWork,
            Request::DeleteSnapshot,
        ] {
            assert_eq!(decide(S::Stopped, busy, r), denied_busy, "{r:?}");
        }
        assert_eq!(
            decide(S::Stopped, busy, Request::RestoreInPlace),
            denied_busy
        );
        // Running: the restore is told to stop the server first, whatever holds it.
        assert!(matches!(
            decide(S::Running, busy, Request::RestoreInPlace),
            Deny(Denied::NotNow { .. })
        ));
        assert_eq!(
            accepted(S::Running, busy, Request::Console),
            Some(Plan::Proceed { live: true })
        );
        assert!(accepted(S::Running, busy, Request::Update { sizing: false }).is_some());
        assert_eq!(
            accepted(S::Running, busy, Request::Observed(S::Stopped)),
            Some(Plan::Settle(S::Stopped))
        );
    }

    /// The whole table for the requests other than actions: state by state, accepted (with its
    /// plan) or not.
    #[test]
    fn the_table_for_updates_deletes_disk_work_restores_and_consoles() {
        let live = |l| Some(Plan::Proceed { live: l });
        let delete = Some(Plan::Move {
            during: S::Deleting,
            after: S::Deleting,
        });
        #[rustfmt::skip]
        let table: [(VmState, [Option<Plan>; 5]); 8] = [
            //            resize       delete  disk work   restore      console
            (S::Creating, [None,       None,   None,       None,        None]),
            (S::Stopped,  [live(false), delete, live(false), live(false), None]),
            (S::Starting, [None,       delete, None,       None,        None]),
            (S::Running,  [live(true), delete, live(true), None,        live(true)]),
            (S::Stopping, [None,       delete, None,       None,        None]),
            (S::Paused,   [live(true), delete, live(true), None,        live(true)]),
            (S::Deleting, [None,       None,   None,       None,        None]),
            (S::Error,    [None,       delete, None,       None,        None]),
        ];
        let requests = [
            Request::Update { sizing: true },
            Request::Delete,
            Request::DiskWork,
            Request::RestoreInPlace,
            Request::Console,
        ];
        for (state, row) in table {
            for (r, want) in requests.iter().zip(row) {
                assert_eq!(accepted(state, None, *r), want, "{r:?} in {state:?}");
                if want.is_none() {
                    assert_eq!(
                        decide(state, None, *r),
                        Deny(Denied::NotNow { state, request: *r }),
                        "{r:?} in {state:?}"
                    );
                }
            }
        }
        // A rename changes the record only: any state, even under a job; a running (or
        // paused) server's pending resize stays pending.
        for s in ALL {
            assert_eq!(
                accepted(s, Some("A backup"), Request::Update { sizing: false }),
                live(matches!(s, S::Running | S::Paused)),
                "rename in {s:?}"
            );
        }
    }

    #[test]
    fn libvirt_events_settle_states_unless_a_change_in_flight_will() {
        for s in ALL {
            for now in ALL {
                let got = decide(s, None, Request::Observed(now));
                let want = if matches!(s, S::Creating | S::Deleting | S::Starting) {
                    Ignore(Ignored::InFlight(s))
                } else if now == s {
                    Ignore(Ignored::Unchanged)
                } else {
                    Accept(Plan::Settle(now))
                };
                assert_eq!(got, want, "{s:?} observed {now:?}");
            }
        }
        assert_eq!(state_after(DomainEventKind::Started), S::Running);
        assert_eq!(state_after(DomainEventKind::Resumed), S::Running);
        assert_eq!(state_after(DomainEventKind::Suspended), S::Paused);
        assert_eq!(state_after(DomainEventKind::Stopped), S::Stopped);
        assert_eq!(state_after(DomainEventKind::Undefined), S::Error);
        assert_eq!(settled(DomainRunState::Crashed), S::Stopped);
        assert_eq!(settled(DomainRunState::ShuttingDown), S::Stopping);
    }

    #[test]
    fn recovery_at_start_finishes_interrupted_changes_and_marks_vanished_domains() {
        for observed in [None, Some(S::Running), Some(S::Stopped)] {
            for s in [S::Creating, S::Deleting] {
                assert_eq!(
                    accepted(s, None, Request::Recover { observed }),
                    Some(Plan::Remove)
                );
            }
        }
        let recover = |s, observed| decide(s, None, Request::Recover { observed });
        assert_eq!(recover(S::Running, None), Accept(Plan::Settle(S::Error)));
        assert_eq!(recover(S::Error, None), Ignore(Ignored::Unchanged));
        assert_eq!(
            recover(S::Running, Some(S::Stopped)),
            Accept(Plan::Settle(S::Stopped))
        );
        assert_eq!(
            recover(S::Stopped, Some(S::Stopped)),
            Ignore(Ignored::Unchanged)
        );
    }

    #[test]
    fn denials_say_why_in_the_words_the_api_always_used() {
        let d = |s, r| match decide(s, None, r) {
            Deny(d) => d.sentence(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            d(S::Stopped, Request::Act(A::Reboot)),
            "A stopped server cannot reboot."
        );
        assert_eq!(
            d(S::Creating, Request::Delete),
            "A creating server cannot be deleted now."
        );
        assert_eq!(
            d(S::Stopped, Request::Console),
            "A stopped server has no screen to show."
        );
        assert_eq!(
            Denied::Busy("An export").sentence(),
            "An export of this server is in progress; wait for it or cancel its job."
        );
    }
}
