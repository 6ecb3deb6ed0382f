//! The audit trail: who changed what, when, with the state before and after.

use crate::api::audit::audit_trail;
use crate::components::auth::{urlencode, RequireRole};
use crate::components::errors::ErrorPanel;
use crate::components::paging::Pager;
use crate::domain::user::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

const KEYS: [&str; 5] = ["actor", "action", "entity", "from", "to"];

#[component]
pub fn AuditPage() -> impl IntoView {
    view! {
        <Title text="Audit trail · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Admin]>
            <Audit />
        </RequireRole>
    }
}

#[component]
fn Audit() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let trail = Resource::new(
        move || {
            (
                q("actor"),
                q("action"),
                q("entity"),
                q("from"),
                q("to"),
                q("page"),
            )
        },
        |(actor, action, entity, from, to, page)| {
            audit_trail(
                Some(actor),
                Some(action),
                Some(entity),
                Some(from),
                Some(to),
                Some(page),
            )
        },
    );
    view! {
        <h1>"Audit trail"</h1>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match trail.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(p) => {
                        let (page, pages) = (p.page, p.pages);
                        let link = move |n: i64| {
                            let keep: String = KEYS.iter().map(|k| format!("{k}={}&", urlencode(&q(k)))).collect();
                            format!("/admin/audit?{keep}page={n}")
                        };
                        view! {
                            <form method="get" action="/admin/audit" class="filters" role="search">
                                <div class="field"><label for="audit-actor">"Who"</label><input id="audit-actor" name="actor" value=q("actor") /></div>
                                <div class="field">
                                    <label for="audit-action">"Action"</label>
                                    <select id="audit-action" name="action">
                                        <option value="">"Any"</option>
                                        {p.actions.iter().map(|a| {
                                            let selected = *a == q("action");
                                            view! { <option value=a.clone() selected=selected>{a.clone()}</option> }
                                        }).collect_view()}
                                    </select>
                                </div>
                                <div class="field"><label for="audit-entity">"What (id or number)"</label><input id="audit-entity" name="entity" value=q("entity") /></div>
                                <div class="field"><label for="audit-from">"From"</label><input id="audit-from" type="date" name="from" value=q("from") /></div>
                                <div class="field"><label for="audit-to">"To"</label><input id="audit-to" type="date" name="to" value=q("to") /></div>
                                <button type="submit" class="button">"Filter"</button>
                            </form>
                            <p class="muted" role="status" data-testid="audit-count">{format!("{} entr{}", p.total, if p.total == 1 { "y" } else { "ies" })}</p>
                            <div class="table-wrap"><table class="data audit">
                                <thead><tr>
                                    <th scope="col">"When (UTC)"</th><th scope="col">"Who"</th><th scope="col">"Action"</th>
                                    <th scope="col">"What"</th><th scope="col">"Before"</th><th scope="col">"After"</th>
                                </tr></thead>
                                <tbody>
                                    {p.entries.into_iter().map(|e| view! {
                                        <tr>
                                            <td class="nowrap">{e.at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                                            <td>{e.actor}</td>
                                            <td><code>{e.action}</code></td>
                                            <td>{format!("{} {}", e.entity, e.entity_id)}</td>
                                            <td><code class="json">{e.before}</code></td>
                                            <td><code class="json">{e.after}</code></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                            <Pager page=page pages=pages href=link newest_first=true />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
