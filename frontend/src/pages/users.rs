//! Administration of users: create one with a role and a quota, change a quota, reset a
//! user's second factors, delete a user.
//!
//! Small like the backup panels: the table and the forms are HTML strings with delegated clicks
//! and submits, every request goes through [`api::call`].

use leptos::prelude::*;
use leptos::task::spawn_local;
use nuage_shared::{CreateUser, Quota, Role, UpdateUser, UserDetail};

use super::backups::{clicked, esc, input, selected};
use crate::api;
use crate::session::use_auth;

/// The five quota fields: input id (after a prefix) and label.
const QUOTA_FIELDS: [(&str, &str); 5] = [
    ("q-vcpus", "vCPUs"),
    ("q-memory", "Memory (MiB)"),
    ("q-disk", "Disk (GiB)"),
    ("q-vms", "Servers"),
    ("q-snapshots", "Snapshots"),
];

fn quota_values(q: &Quota) -> [u64; 5] {
    [
        u64::from(q.vcpus),
        q.memory_mib,
        q.disk_gib,
        u64::from(q.vms),
        u64::from(q.snapshots),
    ]
}

/// A quota's inputs as HTML, ids `{prefix}q-vcpus`…
pub fn quota_html(prefix: &str, q: &Quota) -> String {
    QUOTA_FIELDS
        .iter()
        .zip(quota_values(q))
        .map(|((id, label), v)| {
            format!("<label>{label}<input id=\"{prefix}{id}\" inputmode=\"numeric\" value=\"{v}\"></label>")
        })
        .collect()
}

/// The quota typed into the inputs `{prefix}q-…` (as [`quota_html`] made them), checked.
pub fn parse_quota(typed: [String; 5]) -> Result<Quota, String> {
    let n = |i: usize| {
        let what = QUOTA_FIELDS[i].1;
        typed[i]
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{what} is a whole number."))
    };
    let small =
        |i: usize| u32::try_from(n(i)?).map_err(|_| format!("{} is too large.", QUOTA_FIELDS[i].1));
    Ok(Quota {
        vcpus: small(0)?,
        memory_mib: n(1)?,
        disk_gib: n(2)?,
        vms: small(3)?,
        snapshots: small(4)?,
    })
}

fn typed_quota(prefix: &str) -> Result<Quota, String> {
    parse_quota(QUOTA_FIELDS.map(|(id, _)| input(&format!("{prefix}{id}"))))
}

/// The users table as HTML (every value escaped).
pub fn users_html(list: &[UserDetail]) -> String {
    let rows: String = list
        .iter()
        .map(|u| {
            let (q, used, id) = (&u.quota, &u.usage, esc(&u.id));
            format!(
                "<tr data-user=\"{name}\"><td>{name}</td><td>{}</td><td>{} / {}</td>\
                 <td>{} / {} MiB</td><td>{} / {} GiB</td><td>{} / {}</td><td class=\"totp\">{}</td><td>{}\
                 <button class=\"secondary\" data-act=\"edit-quota\" data-id=\"{id}\">Quota…</button> \
                 <button class=\"secondary\" data-act=\"delete-user\" data-id=\"{id}\">Delete</button></td></tr>",
                if u.role == Role::Admin { "admin" } else { "user" },
                used.vcpus,
                q.vcpus,
                used.memory_mib,
                q.memory_mib,
                used.disk_gib,
                q.disk_gib,
                used.vms,
                q.vms,
                if u.totp { "on" } else { "off" },
                if u.totp {
                    format!("<button class=\"secondary reset-totp\" data-act=\"reset-totp\" data-id=\"{id}\">Reset 2FA</button> ")
                } else {
                    String::new()
                },
                name = esc(&u.username),
            )
        })
        .collect();
    format!(
        "<table class=\"servers\"><thead><tr><th>User</th><th>Role</th><th>vCPUs</th><th>Memory</th>\
         <th>Disk</th><th>Servers</th><th>2FA</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

/// The quota editor of one user.
fn editor_html(q: &Quota) -> String {
    format!(
        "<div class=\"card\" id=\"quota-editor\"><h3>Quota</h3><div class=\"row\">{}</div>\
         <button id=\"save-quota\" data-act=\"save-quota\" data-id=\"\">Save quota</button> \
         <button class=\"secondary\" data-act=\"cancel-quota\" data-id=\"\">Cancel</button></div>",
        quota_html("edit-", q)
    )
}

/// The new-user form (rendered once: what is typed stays).
fn create_form_html() -> String {
    format!(
        "<form class=\"card create\" id=\"user-form\"><h2>New user</h2><div class=\"row\">\
         <label>Username<input id=\"new-username\" autocomplete=\"off\"></label>\
         <label>Password<input id=\"new-password\" type=\"password\" autocomplete=\"new-password\"></label>\
         <label>Role<select id=\"new-role\"><option value=\"user\" selected>user</option>\
         <option value=\"admin\">admin</option></select></label></div><div class=\"row\">{}</div>\
         <button type=\"submit\" id=\"create-user\">Create user</button></form>",
        quota_html("new-", &Quota::DEFAULT)
    )
}

/// Empties the input `id`.
fn clear(id: &str) {
    use wasm_bindgen::JsCast;
    if let Some(i) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
    {
        i.set_value("");
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let auth = use_auth();
    let users = RwSignal::new(Vec::<UserDetail>::new());
    let error = RwSignal::new(None::<String>);
    // The user whose quota is being edited, with the quota the editor opened with.
    let editing = RwSignal::new(None::<(String, Quota)>);
    // One request; its failure is shown, its answer goes to `done`.
    let run = move |method: &'static str,
                    path: String,
                    body: Option<String>,
                    done: Box<dyn FnOnce(String)>| {
        let token = auth.token();
        error.set(None);
        spawn_local(async move {
            match api::call(&token, method, &path, body).await {
                Ok(text) => done(text),
                Err(e) => error.set(Some(auth.explain(e))),
            }
        });
    };
    let load = move || {
        run(
            "GET",
            "/users".into(),
            None,
            Box::new(move |t| users.set(serde_json::from_str(&t).unwrap_or_default())),
        )
    };
    load();

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let quota = match typed_quota("new-") {
            Ok(q) => q,
            Err(m) => return error.set(Some(m)),
        };
        let req = CreateUser {
            username: input("new-username"),
            password: input("new-password"),
            role: if selected("new-role") == "admin" {
                Role::Admin
            } else {
                Role::User
            },
            quota: Some(quota),
        };
        run(
            "POST",
            "/users".into(),
            serde_json::to_string(&req).ok(),
            Box::new(move |_| {
                clear("new-username");
                clear("new-password");
                load();
            }),
        );
    };
    let click = move |ev: leptos::ev::MouseEvent| {
        let Some((act, id)) = clicked(&ev) else {
            return;
        };
        match act.as_str() {
            "edit-quota" => {
                let q = users.with_untracked(|l| l.iter().find(|u| *u.id == id).map(|u| u.quota));
                editing.set(q.map(|q| (id, q)));
            }
            "cancel-quota" => editing.set(None),
            "save-quota" => {
                let Some((id, _)) = editing.get_untracked() else {
                    return;
                };
                let quota = match typed_quota("edit-") {
                    Ok(q) => q,
                    Err(m) => return error.set(Some(m)),
                };
                let req = UpdateUser {
                    quota: Some(quota),
                    ..UpdateUser::default()
                };
                run(
                    "PATCH",
                    format!("/users/{id}"),
                    serde_json::to_string(&req).ok(),
                    Box::new(move |_| {
                        editing.set(None);
                        load();
                    }),
                );
            }
            "delete-user" => run(
                "DELETE",
                format!("/users/{id}"),
                None,
                Box::new(move |_| load()),
            ),
            "reset-totp" => run(
                "DELETE",
                format!("/users/{id}/totp"),
                None,
                Box::new(move |_| load()),
            ),
            _ => {}
        }
    };
    let table = Memo::new(move |_| users.with(|l| users_html(l)));
    let editor = Memo::new(move |_| {
        editing
            .with(|e| e.as_ref().map(|(_, q)| editor_html(q)))
            .unwrap_or_default()
    });
    view! {
        <div id="users-page" on:click=click on:submit=submit>
            {move || error.get().map(|e| view! { <p class="error-text card" role="alert" id="admin-error">{e}</p> })}
            <div inner_html=create_form_html()></div>
            <section class="card" id="users">
                <h2>"Users"</h2>
                <div inner_html=table></div>
                <div inner_html=editor></div>
            </section>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, totp: bool) -> UserDetail {
        UserDetail {
            id: "u\"1".into(),
            username: name.into(),
            role: Role::User,
            created_at: "now".into(),
            quota: Quota::DEFAULT,
            usage: Quota {
                vms: 1,
                ..Quota::DEFAULT
            },
            limits: Default::default(),
            totp,
        }
    }

    #[test]
    fn the_table_escapes_names_and_offers_a_reset_only_with_a_second_factor() {
        let html = users_html(&[user("<b>eve</b>", false), user("bob", true)]);
        assert!(
            !html.contains("<b>") && html.contains("&lt;b&gt;eve"),
            "{html}"
        );
        assert_eq!(
            html.matches("reset-totp").count(),
            2,
            "one button, two mentions: {html}"
        );
        assert!(html.contains("data-id=\"u&quot;1\""), "{html}");
        assert!(html.contains("<td class=\"totp\">on</td>"), "{html}");
        assert!(html.contains("1 / 2"), "{html}");
    }

    #[test]
    fn a_typed_quota_is_whole_numbers_and_fits() {
        let typed = |v: [&str; 5]| parse_quota(v.map(str::to_owned));
        assert_eq!(
            typed(["2", " 512 ", "4", "1", "0"]),
            Ok(Quota {
                vcpus: 2,
                memory_mib: 512,
                disk_gib: 4,
                vms: 1,
                snapshots: 0
            })
        );
        assert_eq!(
            typed(["x", "1", "1", "1", "1"]),
            Err("vCPUs is a whole number.".into())
        );
        assert_eq!(
            typed(["1", "1", "1", "5000000000", "1"]),
            Err("Servers is too large.".into())
        );
        let html = quota_html("new-", &Quota::DEFAULT);
        assert!(
            html.contains("id=\"new-q-memory\"") && html.contains("value=\"4096\""),
            "{html}"
        );
    }
}
