//! Logs: readable lines in development, JSON (with the request id of the current request
//! span) in production. `EVCX_LOG` sets the filter.

use tracing_subscriber::EnvFilter;

pub fn init(dev_mode: bool) {
    let filter = EnvFilter::try_from_env("EVCX_LOG").unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,tower_sessions=warn,tower_sessions_core=warn")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if dev_mode {
        builder.compact().try_init()
    } else {
        builder
            .json()
            // The whole span list, so every line carries the request span and its request id.
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    };
    // A second init (tests start several servers in one process) keeps the first subscriber.
    drop(result);
}
