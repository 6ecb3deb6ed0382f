//! Pieces every list screen shares: the pager under a table, the vehicle filter.

use crate::api::vehicles::list_vehicles;
use leptos::prelude::*;

/// "← Previous · Page 2 of 7 · Next →", plain links (works without JavaScript).
/// `newest_first` labels the links "Newer" / "Older" instead.
#[component]
pub fn Pager(
    page: i64,
    pages: i64,
    href: impl Fn(i64) -> String + 'static,
    #[prop(optional)] newest_first: bool,
    #[prop(default = "Pages")] label: &'static str,
) -> impl IntoView {
    let (back, forward) = if newest_first {
        ("← Newer", "Older →")
    } else {
        ("← Previous", "Next →")
    };
    view! {
        <nav class="pagination" aria-label=label>
            {(page > 1).then(|| view! { <a href=href(page - 1) rel="prev">{back}</a> })}
            <span>{format!("Page {page} of {pages}")}</span>
            {(page < pages).then(|| view! { <a href=href(page + 1) rel="next">{forward}</a> })}
        </nav>
    }
}

/// A "Vehicle" select of the caller's vehicles (archived ones too when `archived`), with
/// "All vehicles" first; `selected` is the chosen vehicle id.
#[component]
pub fn VehicleSelect(
    id: &'static str,
    name: &'static str,
    selected: Signal<String>,
    #[prop(optional)] archived: bool,
) -> impl IntoView {
    let vehicles = Resource::new(
        move || archived,
        |archived| list_vehicles(Some(archived.to_string())),
    );
    view! {
        <div class="field">
            <label for=id>"Vehicle"</label>
            <select id=id name=name>
                <option value="">"All vehicles"</option>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        vehicles.await.unwrap_or_default().into_iter().map(|v| {
                            let value = v.id.to_string();
                            let chosen = value == selected.get();
                            view! { <option value=value selected=chosen>{v.label()}</option> }
                        }).collect_view()
                    })}
                </Suspense>
            </select>
        </div>
    }
}
