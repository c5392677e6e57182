//! Create a server: sizes bounded by what the quota still allows, checked as the user types with
//! the same rules the daemon applies.

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{
    limits, validate_hostname, validate_password, validate_vm_name, CreateVm, Image, Me,
};

use crate::api;
use crate::session::use_auth;

const GIB: u64 = 1 << 30;

/// The form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form {
    pub name: String,
    pub image_id: String,
    pub vcpus: String,
    pub memory_mib: String,
    pub disk_gib: String,
    pub hostname: String,
    pub ssh_key: String,
    pub password: String,
}

/// Checks the form against the rules and what is left of the quota; returns the request or the
/// problems, each with the field it belongs to.
pub fn check(f: &Form, me: &Me, images: &[Image]) -> Result<CreateVm, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let left = |quota: u64, used: u64| quota.saturating_sub(used);
    if let Err(m) = validate_vm_name(&f.name) {
        problems.push(("name", m.to_owned()));
    }
    if !f.hostname.is_empty() {
        if let Err(m) = validate_hostname(&f.hostname) {
            problems.push(("hostname", m.to_owned()));
        }
    }
    let image = images.iter().find(|i| i.id == f.image_id);
    if image.is_none() {
        problems.push(("image", "Choose an image.".into()));
    }
    let mut number = |field: &'static str,
                      text: &str,
                      range: std::ops::RangeInclusive<u64>,
                      free: u64,
                      unit: &str| {
        match text.trim().parse::<u64>() {
            Ok(v) if !range.contains(&v) => {
                problems.push((
                    field,
                    format!("Between {} and {}{unit}.", range.start(), range.end()),
                ));
                None
            }
            Ok(v) if v > free => {
                problems.push((field, format!("Your quota has {free}{unit} left.")));
                None
            }
            Ok(v) => Some(v),
            Err(_) => {
                problems.push((field, "Enter a whole number.".into()));
                None
            }
        }
    };
    let vcpus = number(
        "vcpus",
        &f.vcpus,
        1..=*limits::VCPUS.end() as u64,
        left(me.quota.vcpus.into(), me.usage.vcpus.into()),
        "",
    );
    let memory = number(
        "memory",
        &f.memory_mib,
        limits::MEMORY_MIB,
        left(me.quota.memory_mib, me.usage.memory_mib),
        " MiB",
    );
    let disk = number(
        "disk",
        &f.disk_gib,
        limits::DISK_GIB,
        left(me.quota.disk_gib, me.usage.disk_gib),
        " GiB",
    );
    if let (Some(d), Some(img)) = (disk, image) {
        if d * GIB < img.virtual_size_bytes {
            problems.push((
                "disk",
                format!(
                    "This image needs at least {} GiB.",
                    img.virtual_size_bytes.div_ceil(GIB)
                ),
            ));
        }
    }
    if me.usage.vms >= me.quota.vms {
        problems.push((
            "name",
            format!(
                "Your quota allows {} server(s) and you have them all.",
                me.quota.vms
            ),
        ));
    }
    if !f.password.is_empty() {
        if let Err(m) = validate_password(&f.password) {
            problems.push(("password", m.to_owned()));
        }
    }
    let key = f.ssh_key.trim();
    if !key.is_empty() && !["ssh-", "ecdsa-", "sk-"].iter().any(|p| key.starts_with(p)) {
        problems.push((
            "ssh_key",
            "A public key starts with ssh-…, ecdsa-… or sk-….".into(),
        ));
    }
    match (problems.is_empty(), vcpus, memory, disk) {
        (true, Some(v), Some(m), Some(d)) => Ok(CreateVm {
            name: f.name.clone(),
            image_id: f.image_id.clone().into(),
            vcpus: u32::try_from(v).unwrap_or(u32::MAX),
            memory_mib: m,
            disk_gib: d,
            hostname: (!f.hostname.is_empty()).then(|| f.hostname.clone()),
            ssh_authorized_keys: if key.is_empty() {
                vec![]
            } else {
                vec![key.to_owned()]
            },
            password: (!f.password.is_empty()).then(|| f.password.clone()),
            start: None,
        }),
        _ => Err(problems),
    }
}

#[component]
pub fn CreateServerPage() -> impl IntoView {
    let auth = use_auth();
    let token = auth.token();
    let images = RwSignal::new(Vec::<Image>::new());
    let me = RwSignal::new(None::<Me>);
    let form = RwSignal::new(Form {
        vcpus: "1".into(),
        memory_mib: "512".into(),
        disk_gib: "10".into(),
        ..Form::default()
    });
    let touched = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    {
        let token = token.clone();
        spawn_local(async move {
            match (api::images(&token).await, api::me(&token).await) {
                (Ok(list), Ok(m)) => {
                    if let Some(first) = list.first() {
                        form.update(|f| f.image_id = first.id.to_string());
                    }
                    images.set(list);
                    me.set(Some(m));
                }
                (Err(e), _) | (_, Err(e)) => error.set(Some(auth.explain(e))),
            }
        });
    }
    let checked = Memo::new(move |_| me.get().map(|m| check(&form.get(), &m, &images.get())));
    let problem =
        move |field: &'static str| {
            move || {
                let shown = touched.get() || !form.with(|f| f.name.is_empty());
                checked.get().and_then(|r| r.err()).and_then(|ps| {
                    ps.into_iter().find(|(f, _)| *f == field).filter(|_| shown).map(|(_, m)| {
                    view! { <span class="field-error" id=format!("{field}-error")>{m}</span> }
                })
                })
            }
        };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        let Some(Ok(req)) = checked.get_untracked() else {
            return;
        };
        busy.set(true);
        let token = token.clone();
        spawn_local(async move {
            match api::create_vm(&token, &req).await {
                Ok(vm) => crate::route::navigate(&format!("/servers/{}", vm.id)),
                Err(e) => error.set(Some(auth.explain(e))),
            }
            busy.set(false);
        });
    };
    let field = |get: fn(&Form) -> &String, set: fn(&mut Form, String)| {
        (
            move || form.with(|f| get(f).clone()),
            move |ev| form.update(|f| set(f, event_target_value(&ev))),
        )
    };
    let (name, set_name) = field(|f| &f.name, |f, v| f.name = v);
    let (hostname, set_hostname) = field(|f| &f.hostname, |f, v| f.hostname = v);
    let (vcpus, set_vcpus) = field(|f| &f.vcpus, |f, v| f.vcpus = v);
    let (memory, set_memory) = field(|f| &f.memory_mib, |f, v| f.memory_mib = v);
    let (disk, set_disk) = field(|f| &f.disk_gib, |f, v| f.disk_gib = v);
    let (key, set_key) = field(|f| &f.ssh_key, |f, v| f.ssh_key = v);
    let (password, set_password) = field(|f| &f.password, |f, v| f.password = v);
    let left = move || {
        me.get().map(|m| {
            format!(
                "Left in your quota: {} vCPU, {} MiB, {} GiB, {} server(s).",
                m.quota.vcpus.saturating_sub(m.usage.vcpus),
                m.quota.memory_mib.saturating_sub(m.usage.memory_mib),
                m.quota.disk_gib.saturating_sub(m.usage.disk_gib),
                m.quota.vms.saturating_sub(m.usage.vms)
            )
        })
    };

    view! {
        <form class="card create" id="create-form" on:submit=submit novalidate>
            <h2>"Create a server"</h2>
            <p class="muted" id="quota-left">{left}</p>
            <label>"Name"<input id="name" prop:value=name on:input=set_name autocomplete="off"/>{problem("name")}</label>
            <label>"Image"
                <select id="image" on:change=move |ev| form.update(|f| f.image_id = event_target_value(&ev))>
                    {move || images.get().into_iter().map(|i| {
                        let label = format!("{} ({} GiB)", i.name, i.virtual_size_bytes.div_ceil(GIB));
                        view! { <option value=i.id.to_string() selected=form.with(|f| f.image_id == i.id)>{label}</option> }
                    }).collect_view()}
                </select>
                {problem("image")}
            </label>
            <div class="row">
                <label>"vCPUs"<input id="vcpus" inputmode="numeric" prop:value=vcpus on:input=set_vcpus/>{problem("vcpus")}</label>
                <label>"Memory (MiB)"<input id="memory" inputmode="numeric" prop:value=memory on:input=set_memory/>{problem("memory")}</label>
                <label>"Disk (GiB)"<input id="disk" inputmode="numeric" prop:value=disk on:input=set_disk/>{problem("disk")}</label>
            </div>
            <label>"Hostname (the name when empty)"<input id="hostname" prop:value=hostname on:input=set_hostname/>{problem("hostname")}</label>
            <label>"SSH public key"<input id="ssh-key" prop:value=key on:input=set_key/>{problem("ssh_key")}</label>
            <label>"Password (optional)"<input id="password" type="password" prop:value=password on:input=set_password autocomplete="new-password"/>{problem("password")}</label>
            {move || error.get().map(|e| view! { <p class="error-text" role="alert">{e}</p> })}
            <button type="submit" id="create" disabled=move || busy.get()>{move || if busy.get() { "Creating…" } else { "Create" }}</button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuage_shared::{Quota, Role, User};

    fn me(used_vms: u32) -> Me {
        Me {
            user: User {
                id: "u".into(),
                username: "alice".into(),
                role: Role::User,
            },
            quota: Quota {
                vcpus: 2,
                memory_mib: 1024,
                disk_gib: 10,
                vms: 2,
                snapshots: 0,
            },
            usage: Quota {
                vcpus: 1,
                memory_mib: 256,
                disk_gib: 2,
                vms: used_vms,
                snapshots: 0,
            },
            security: Default::default(),
        }
    }

    fn images() -> Vec<Image> {
        vec![Image {
            id: "img".into(),
            name: "debian".into(),
            format: "qcow2".into(),
            virtual_size_bytes: 3 * GIB,
            os: None,
            created_at: String::new(),
        }]
    }

    fn form() -> Form {
        Form {
            name: "web-1".into(),
            image_id: "img".into(),
            vcpus: "1".into(),
            memory_mib: "512".into(),
            disk_gib: "4".into(),
            ..Form::default()
        }
    }

    fn fields(r: Result<CreateVm, Vec<(&'static str, String)>>) -> Vec<&'static str> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_good_form_becomes_the_request() {
        let req = check(
            &Form {
                ssh_key: " ssh-ed25519 AAAA me ".into(),
                ..form()
            },
            &me(1),
            &images(),
        )
        .unwrap();
        assert_eq!((req.vcpus, req.memory_mib, req.disk_gib), (1, 512, 4));
        assert_eq!(
            req.ssh_authorized_keys,
            vec!["ssh-ed25519 AAAA me".to_owned()]
        );
        assert_eq!(req.hostname, None);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_form_mirrors_the_api_rules_and_the_quota_left() {
        let table: Vec<(Form, &str)> = vec![
            (
                Form {
                    name: "Web 1".into(),
                    ..form()
                },
                "name",
            ),
            (
                Form {
                    hostname: "-x".into(),
                    ..form()
                },
                "hostname",
            ),
            (
                Form {
                    vcpus: "2".into(),
                    ..form()
                },
                "vcpus",
            ),
            (
                Form {
                    vcpus: "two".into(),
                    ..form()
                },
                "vcpus",
            ),
            (
                Form {
                    memory_mib: "1000".into(),
                    ..form()
                },
                "memory",
            ),
            (
                Form {
                    memory_mib: "64".into(),
                    ..form()
                },
                "memory",
            ),
            (
                Form {
                    disk_gib: "9".into(),
                    ..form()
                },
                "disk",
            ),
            (
                Form {
                    disk_gib: "2".into(),
                    ..form()
                },
                "disk",
            ),
            (
                Form {
                    image_id: "gone".into(),
                    ..form()
                },
                "image",
            ),
            (
                Form {
                    password: "short".into(),
                    ..form()
                },
                "password",
            ),
            (
                Form {
                    ssh_key: "not a key".into(),
                    ..form()
                },
                "ssh_key",
            ),
        ];
        for (f, field) in table {
            assert_eq!(fields(check(&f, &me(1), &images())), vec![field], "{f:?}");
        }
        assert!(
            fields(check(&form(), &me(2), &images())).contains(&"name"),
            "no server left in the quota"
        );
    }
}
