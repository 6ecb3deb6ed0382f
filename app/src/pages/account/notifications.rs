//! The inbox behind the bell (`/notifications`): every notification, newest first, opened one
//! by one or all marked read; it follows the live bell. And the e-mail settings
//! (`/notifications/settings`): which events are also sent by e-mail.

use crate::api::notifications::{
    email_settings, list_notifications, OpenNotification, ReadAllNotifications, SetEmail,
};
use crate::api::ANY_ROLE;
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, FormError};
use crate::components::live::InboxFeed;
use crate::components::paging::Pager;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn NotificationsPage() -> impl IntoView {
    view! {
        <Title text="Notifications · EV Carbon Exchange" />
        <RequireRole roles=ANY_ROLE>
            <Notifications />
        </RequireRole>
    }
}

#[component]
fn Notifications() -> impl IntoView {
    let query = use_query_map();
    let page = move || query.read().get("page");
    let only_unread = move || query.read().get("unread").is_some_and(|u| u == "yes");
    let open = ServerAction::<OpenNotification>::new();
    let read_all = ServerAction::<ReadAllNotifications>::new();
    let feed = InboxFeed::get();
    let inbox = Resource::new(
        move || {
            (
                page(),
                only_unread(),
                read_all.version().get(),
                feed.stamp(),
            )
        },
        |(page, unread, _, _)| list_notifications(page, unread.then(|| "yes".to_owned())),
    );
    let error = Signal::derive(move || error_of(*open).get().or_else(|| error_of(*read_all).get()));
    view! {
        <div class="page-head">
            <h1>"Notifications"</h1>
            <a href="/notifications/settings">"E-mail settings"</a>
        </div>
        <nav class="tabs" aria-label="Show">
            <a href="/notifications" class:current=move || !only_unread() aria-current=move || (!only_unread()).then_some("page")>"All"</a>
            <a href="/notifications?unread=yes" class:current=only_unread aria-current=move || only_unread().then_some("page")>"Unread"</a>
        </nav>
        <FormError error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match inbox.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(inbox) => {
                        let unread_only = inbox.only_unread;
                        view! {
                            <div class="inbox-head">
                                <p data-testid="unread-summary">{match inbox.unread {
                                    0 => "Nothing unread.".to_owned(),
                                    1 => "1 unread notification.".to_owned(),
                                    n => format!("{n} unread notifications."),
                                }}</p>
                                {(inbox.unread > 0).then(|| view! {
                                    <ActionForm action=read_all attr:class="inline">
                                        <button type="submit" class="button small secondary">"Mark all read"</button>
                                    </ActionForm>
                                })}
                            </div>
                            {if inbox.notices.is_empty() {
                                view! { <p class="notice">{if unread_only { "No unread notifications." } else { "No notifications yet. Sales, bids, payments and decisions on your requests will appear here." }}</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="inbox" data-testid="inbox">
                                        {inbox.notices.into_iter().map(|n| view! {
                                            <li class=if n.read { "notice-item read" } else { "notice-item unread" }>
                                                <ActionForm action=open attr:class="notice-open">
                                                    <input type="hidden" name="id" value=n.id.to_string() />
                                                    <button type="submit" class="link-button notice-title">
                                                        {(!n.read).then(|| view! { <span class="visually-hidden">"Unread: "</span> })}
                                                        {n.title.clone()}
                                                    </button>
                                                </ActionForm>
                                                {(n.repeats > 1).then(|| view! { <span class="badge">{format!("×{}", n.repeats)}</span> })}
                                                <p>{n.body.clone()}</p>
                                                <time class="muted small" datetime=n.created_at.to_rfc3339()>
                                                    {n.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}
                                                </time>
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                    {(inbox.pages > 1).then(|| view! {
                                        <Pager page=inbox.page pages=inbox.pages newest_first=true
                                            href=move |p| if unread_only { format!("/notifications?unread=yes&page={p}") } else { format!("/notifications?page={p}") } />
                                    })}
                                }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
pub fn NotificationSettingsPage() -> impl IntoView {
    view! {
        <Title text="E-mail settings · EV Carbon Exchange" />
        <RequireRole roles=ANY_ROLE>
            <Settings />
        </RequireRole>
    }
}

#[component]
fn Settings() -> impl IntoView {
    let set = ServerAction::<SetEmail>::new();
    let choices = Resource::new(move || set.version().get(), |_| email_settings());
    let error = error_of(*set);
    view! {
        <h1>"E-mail settings"</h1>
        <p>"Everything below always appears under the bell. Choose which of these events are also sent to you by e-mail."</p>
        <FormError error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match choices.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(choices) if choices.is_empty() => view! {
                        <p class="notice">"None of the platform's events concern your role, so there is nothing to e-mail you."</p>
                    }.into_any(),
                    Ok(choices) => view! {
                        <div class="table-wrap"><table class="data" data-testid="email-settings">
                            <thead><tr><th scope="col">"Event"</th><th scope="col">"E-mail"</th><th scope="col">"Change"</th></tr></thead>
                            <tbody>
                                {choices.into_iter().map(|c| {
                                    let (next, button) = if c.email { ("off", "Turn off") } else { ("on", "Turn on") };
                                    view! {
                                        <tr>
                                            <td>{c.label.clone()}</td>
                                            <td>{if c.email { "On" } else { "Off" }}</td>
                                            <td>
                                                <ActionForm action=set attr:class="inline">
                                                    <input type="hidden" name="kind" value=c.kind.as_str() />
                                                    <input type="hidden" name="email" value=next />
                                                    <button type="submit" class="button small secondary"
                                                        aria-label=format!("{button} e-mail for “{}”", c.label)>{button}</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
