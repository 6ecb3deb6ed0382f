//! The EV Carbon Exchange server: `server` (serve), `server migrate`, `server admin create`, …

// Rendering a page allocates and frees many small strings; glibc's allocator spent about a
// third of the server's time on the marketplace benchmark (perf), mimalloc a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::cli::run().await
}
