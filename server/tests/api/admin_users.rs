//! The admin's user management.

use super::support::{field_error, json, TestApp, PASSWORD};
use app::domain::user::Role;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn admin_searches_filters_and_pages_users(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    for i in 0..30 {
        app.user(
            if i % 3 == 0 {
                Role::Buyer
            } else {
                Role::EvOwner
            },
            &format!("driver{i:02}@fleet.example"),
        )
        .await;
    }
    let (status, page) = json(
        admin
            .post("/api/admin/users", &[("q", "fleet.example")])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 30);
    assert_eq!(page["pages"], 2);
    assert_eq!(page["users"].as_array().unwrap().len(), 25);
    let (_, second) = json(
        admin
            .post("/api/admin/users", &[("q", "fleet.example"), ("page", "2")])
            .await,
    )
    .await;
    assert_eq!(second["users"].as_array().unwrap().len(), 5);

    let (_, buyers) = json(
        admin
            .post("/api/admin/users", &[("q", "FLEET"), ("role", "buyer")])
            .await,
    )
    .await;
    assert_eq!(buyers["total"], 10);
    assert!(buyers["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["role"] == "buyer"));

    let (_, one) = json(admin.post("/api/admin/users", &[("q", "driver07")]).await).await;
    assert_eq!(one["total"], 1);
    assert_eq!(one["users"][0]["email"], "driver07@fleet.example");

    // Wildcards in the search text are taken literally.
    let (_, none) = json(admin.post("/api/admin/users", &[("q", "%")]).await).await;
    assert_eq!(none["total"], 0);

    let (status, body) = json(admin.post("/api/admin/users", &[("page", "0")]).await).await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "page").is_some());
    let (status, _) = json(admin.post("/api/admin/users", &[("role", "pilot")]).await).await;
    assert_eq!(status, 422);
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_creates_a_cva_who_sets_a_password_by_the_mailed_link(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (admin, admin_id) = app.signed_in(Role::Admin).await;

    let form = [
        ("email", "verifier@cva.example"),
        ("full_name", "Đỗ Thu Hà"),
        ("phone", "+84 91 222 3333"),
        ("role", "ev_owner"),
    ];
    let (status, body) = json(admin.post("/api/admin/users/create", &form).await).await;
    assert_eq!(status, 422, "owners sign up themselves");
    assert!(field_error(&body, "role").is_some());

    let form = [
        ("email", "verifier@cva.example"),
        ("full_name", "Đỗ Thu Hà"),
        ("phone", "+84 91 222 3333"),
        ("role", "cva"),
    ];
    let (status, body) = json(admin.post("/api/admin/users/create", &form).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "cva");
    let (status, body) = json(admin.post("/api/admin/users/create", &form).await).await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "email")
        .unwrap()
        .contains("already exists"));

    // No password yet: nobody can sign in until the link is used.
    let cva = app.client();
    assert_eq!(cva.login("verifier@cva.example", "").await.status(), 401);
    let (_, mail) = app.last_mail("verifier@cva.example").await.unwrap();
    assert!(mail.contains("Verifier (CVA)"));
    let token = app.mailed_token("verifier@cva.example").await;
    let token = token.as_str();
    let form = [
        ("token", token),
        ("new_password", "checking every credit"),
        ("new_password_confirm", "checking every credit"),
    ];
    assert_eq!(
        cva.post("/api/users/password-reset/confirm", &form)
            .await
            .status(),
        200
    );
    let (status, me) = json(
        cva.login("verifier@cva.example", "checking every credit")
            .await,
    )
    .await;
    assert_eq!((status, me["role"].as_str()), (200, Some("cva")));

    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'user.create' AND actor_id = $1",
    )
    .bind(admin_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn suspension_ends_sessions_at_once_and_reactivation_restores_access(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    let id = app.user(Role::Buyer, "suspect@example.com").await;
    let buyer = app.client();
    buyer.login("suspect@example.com", PASSWORD).await;
    assert!(buyer.me().await.is_some());

    let (status, body) = json(
        admin
            .post(
                "/api/admin/users/status",
                &[("user_id", &id.to_string()), ("status", "suspended")],
            )
            .await,
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("suspended")));
    assert_eq!(
        buyer.me().await,
        None,
        "the session ended with the suspension"
    );
    let (status, body) = json(buyer.login("suspect@example.com", PASSWORD).await).await;
    assert_eq!((status, body["kind"].as_str()), (403, Some("suspended")));

    admin
        .post(
            "/api/admin/users/status",
            &[("user_id", &id.to_string()), ("status", "active")],
        )
        .await;
    assert_eq!(
        buyer.login("suspect@example.com", PASSWORD).await.status(),
        200
    );
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE entity_id = $1 AND action IN ('user.suspend', 'user.reactivate') ORDER BY id")
            .bind(id.to_string())
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["user.suspend", "user.reactivate"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn role_changes_apply_at_once_are_audited_and_never_lock_the_admin_out(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (admin, admin_id) = app.signed_in(Role::Admin).await;
    let (owner, owner_id) = app.signed_in(Role::EvOwner).await;
    assert_eq!(owner.post("/api/admin/users", &[]).await.status(), 403);

    let (status, body) = json(
        admin
            .post(
                "/api/admin/users/role",
                &[("user_id", &owner_id.to_string()), ("role", "admin")],
            )
            .await,
    )
    .await;
    assert_eq!((status, body["role"].as_str()), (200, Some("admin")));
    assert_eq!(
        owner.post("/api/admin/users", &[]).await.status(),
        200,
        "the new role applies to the open session"
    );

    let (status, body) = json(
        admin
            .post(
                "/api/admin/users/role",
                &[("user_id", &admin_id.to_string()), ("role", "buyer")],
            )
            .await,
    )
    .await;
    assert_eq!((status, body["kind"].as_str()), (409, Some("conflict")));
    let (status, _) = json(
        admin
            .post(
                "/api/admin/users/status",
                &[("user_id", &admin_id.to_string()), ("status", "suspended")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 409);

    let (status, body) = json(
        admin
            .post(
                "/api/admin/users/role",
                &[("user_id", "garbage"), ("role", "buyer")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "user_id").is_some());
    let (status, _) = json(
        admin
            .post(
                "/api/admin/users/role",
                &[
                    ("user_id", &uuid::Uuid::new_v4().to_string()),
                    ("role", "buyer"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, 404);

    let changed: (String, String) = sqlx::query_as(
        "SELECT before->>'role', after->>'role' FROM audit_log WHERE action = 'user.set_role' AND entity_id = $1",
    )
    .bind(owner_id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(changed, ("ev_owner".to_owned(), "admin".to_owned()));
}

#[sqlx::test(migrations = "../migrations")]
async fn the_audit_trail_cannot_be_rewritten(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.user(Role::Buyer, "someone@example.com").await;
    let update = sqlx::query("UPDATE audit_log SET action = 'tampered'")
        .execute(&app.pool)
        .await;
    assert!(update.is_err());
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&app.pool)
        .await;
    assert!(delete.is_err());
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'user.create'")
            .await,
        1
    );
}
