//! The EV Carbon Exchange server: `server` (serve), `server migrate`, `server admin create`, …

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::cli::run().await
}
