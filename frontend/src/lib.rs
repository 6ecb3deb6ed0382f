//! The browser entry point: hydrates the server-rendered page. Nothing else lives here.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

#[cfg(test)]
mod tests {
    //! The browser build runs the same domain rules as the server; check they hold here too.
    use app::domain::user::{Email, Password, Phone, Role};

    #[test]
    fn sign_up_rules_hold_in_the_browser_build() {
        assert_eq!(
            Email::parse(" Buyer@Example.com ").unwrap().as_str(),
            "buyer@example.com"
        );
        assert!(Email::parse("buyer@").is_err());
        assert!(Password::parse("short", None).is_err());
        assert!(Phone::parse("+84 90 123 4567").is_ok());
        assert!(Role::parse("ev_owner").unwrap().self_service());
    }
}
