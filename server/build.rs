// sqlx::migrate! embeds ../migrations at compile time: a changed migration must rebuild it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
