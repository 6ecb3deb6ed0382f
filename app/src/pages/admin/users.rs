//! Users: search and filter, create CVA and admin accounts, change a role, suspend/reactivate,
//! mark an identity checked (KYC: withdrawals need it).

use crate::api::admin::{list_users, CreateUser, SetUserRole, SetUserStatus, UserPage};
use crate::api::operations::SetKyc;
use crate::api::User;
use crate::components::auth::{urlencode, Auth, RequireRole};
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use crate::components::paging::Pager;
use crate::domain::user::{AccountStatus, Role};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn UsersPage() -> impl IntoView {
    view! {
        <Title text="Users · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Admin]>
            <Users />
        </RequireRole>
    }
}

#[derive(Clone, Copy)]
struct RowActions {
    role: ServerAction<SetUserRole>,
    status: ServerAction<SetUserStatus>,
    kyc: ServerAction<SetKyc>,
}

#[component]
fn Users() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let create = ServerAction::<CreateUser>::new();
    let actions = RowActions {
        role: ServerAction::new(),
        status: ServerAction::new(),
        kyc: ServerAction::new(),
    };
    let users = Resource::new(
        move || {
            (
                q("q"),
                q("role"),
                q("status"),
                q("page"),
                create.version().get(),
                actions.role.version().get(),
                actions.status.version().get(),
                actions.kyc.version().get(),
            )
        },
        |(q, role, status, page, ..)| list_users(Some(q), Some(role), Some(status), Some(page)),
    );
    let create_error = error_of(*create);
    let created = succeeded(*create);
    let row_error = Signal::derive(move || {
        error_of(*actions.role)
            .get()
            .or_else(|| error_of(*actions.status).get())
            .or_else(|| error_of(*actions.kyc).get())
    });

    view! {
        <h1>"Users"</h1>
        <form method="get" action="/admin/users" class="filters" role="search">
            <div class="field">
                <label for="q">"Search"</label>
                <input id="q" name="q" type="search" value=move || q("q") aria-describedby="q-hint" />
                <small class="hint" id="q-hint">"E-mail, name or phone"</small>
            </div>
            <div class="field">
                <label for="role">"Role"</label>
                <select id="role" name="role">
                    <option value="" selected=move || q("role").is_empty()>"Any role"</option>
                    {Role::ALL.into_iter().map(|r| view! {
                        <option value=r.as_str() selected=move || q("role") == r.as_str()>{r.label()}</option>
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="status">"Status"</label>
                <select id="status" name="status">
                    <option value="" selected=move || q("status").is_empty()>"Any status"</option>
                    <option value="active" selected=move || q("status") == "active">"Active"</option>
                    <option value="suspended" selected=move || q("status") == "suspended">"Suspended"</option>
                </select>
            </div>
            <button type="submit" class="button">"Search"</button>
        </form>

        <FormError error=row_error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(page) => {
                        let me = Auth::get().user.await.ok().flatten().map(|u| u.id);
                        view! { <UserTable page actions me /> }.into_any()
                    }
                }
            })}
        </Transition>

        <section class="card" aria-labelledby="create-heading">
            <h2 id="create-heading">"Create a CVA or admin account"</h2>
            <p class="muted">"The person receives an e-mail with a link to choose their password. EV owners and buyers sign up themselves."</p>
            <Show when=move || created.get()>
                <p class="notice" role="status">"The account is created and the invitation is on its way."</p>
            </Show>
            <ActionForm action=create attr:class="grid two">
                <FormError error=create_error />
                <Field label="Full name" name="full_name" error=create_error />
                <Field label="E-mail" name="email" error=create_error inputmode="email" />
                <Field label="Phone" name="phone" kind="tel" error=create_error />
                <div class="field">
                    <label for="create-role">"Role"</label>
                    <select id="create-role" name="role">
                        <option value="cva">{Role::Cva.label()}</option>
                        <option value="admin">{Role::Admin.label()}</option>
                    </select>
                    <p class="field-error">{move || create_error.get().and_then(|e| e.field("role"))}</p>
                </div>
                <div class="form-actions">
                    <Submit action=*create label="Create account" busy="Creating…" />
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn UserTable(page: UserPage, actions: RowActions, me: Option<uuid::Uuid>) -> impl IntoView {
    let query = use_query_map();
    let link_to = move |p: i64| {
        let m = query.read_untracked();
        let keep = ["q", "role", "status"]
            .iter()
            .filter_map(|k| {
                m.get(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={}&", urlencode(&v)))
            })
            .collect::<String>();
        format!("/admin/users?{keep}page={p}")
    };
    let (current, pages, total) = (page.page, page.pages, page.total);
    view! {
        <p class="muted" role="status">{format!("{total} account{} found", if total == 1 { "" } else { "s" })}</p>
        <div class="table-wrap">
            <table class="data users">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"E-mail"</th>
                        <th scope="col">"Phone"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Identity (KYC)"</th>
                        <th scope="col">"Joined"</th>
                    </tr>
                </thead>
                <tbody>
                    {page.users.into_iter().map(|u| {
                        let is_me = Some(u.id) == me;
                        view! { <UserRow user=u actions is_me /> }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pager page=current pages=pages href=link_to />
    }
}

#[component]
fn UserRow(user: User, actions: RowActions, is_me: bool) -> impl IntoView {
    let id = user.id.to_string();
    let kyc_id = id.clone();
    let kyc_label = format!(
        "{} the identity of {}",
        if user.kyc_verified {
            "Revoke the check of"
        } else {
            "Mark checked"
        },
        user.email
    );
    let suspended = user.status == AccountStatus::Suspended;
    let role = user.role;
    let select_id = format!("role-{id}");
    let select_label = format!("Role of {}", user.email);
    let joined = user.created_at.format("%Y-%m-%d").to_string();
    let status_badge = view! {
        <span class=if suspended { "badge warn" } else { "badge ok" }>{if suspended { "Suspended" } else { "Active" }}</span>
    };
    // An admin cannot change their own role or suspend themselves (the server refuses too).
    let (role_cell, status_action) = if is_me {
        (
            view! { {role.label()} " " <span class="you">"(you)"</span> }.into_any(),
            ().into_any(),
        )
    } else {
        let status_id = id.clone();
        (
            view! {
                <ActionForm action=actions.role attr:class="inline">
                    <input type="hidden" name="user_id" value=id />
                    <label class="visually-hidden" for=select_id.clone()>{select_label}</label>
                    <select id=select_id name="role">
                        {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str() selected=r == role>{r.label()}</option> }).collect_view()}
                    </select>
                    <button type="submit" class="button small secondary">"Change"</button>
                </ActionForm>
            }
            .into_any(),
            view! {
                <ActionForm action=actions.status attr:class="inline">
                    <input type="hidden" name="user_id" value=status_id />
                    <input type="hidden" name="status" value=if suspended { "active" } else { "suspended" } />
                    <button type="submit" class="button small secondary">{if suspended { "Reactivate" } else { "Suspend" }}</button>
                </ActionForm>
            }
            .into_any(),
        )
    };
    view! {
        <tr data-email=user.email.clone() class:suspended=suspended>
            <td>{user.full_name.clone()}</td>
            <td>{user.email.clone()}</td>
            <td>{user.phone.clone()}</td>
            <td>{role_cell}</td>
            <td>{status_badge} {status_action}</td>
            <td>
                {if user.kyc_verified { view! { <span class="badge ok">"Checked"</span> }.into_any() } else { view! { <span class="badge warn">"Not checked"</span> }.into_any() }}
                {matches!(role, Role::EvOwner | Role::Buyer).then(|| view! {
                    <ActionForm action=actions.kyc attr:class="inline">
                        <input type="hidden" name="user_id" value=kyc_id />
                        <input type="hidden" name="verified" value=if user.kyc_verified { "off" } else { "on" } />
                        <button type="submit" class="button small secondary" aria-label=kyc_label>
                            {if user.kyc_verified { "Revoke" } else { "Mark checked" }}
                        </button>
                    </ActionForm>
                })}
            </td>
            <td class="nowrap">{joined}</td>
        </tr>
    }
}
