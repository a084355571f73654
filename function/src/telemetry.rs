//! Logging set up the way Lambda expects: JSON when the function's log format is JSON
//! (`AWS_LAMBDA_LOG_FORMAT`), level from `AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG` for full control.

use tracing_subscriber::EnvFilter;

/// The filter for this crate at `level`; other crates only warn, so that no dependency logs
/// request URLs or bodies unless `RUST_LOG` asks for it.
pub fn filter(level: Option<&str>, rust_log: Option<&str>) -> EnvFilter {
    if let Some(directives) = rust_log.filter(|d| !d.trim().is_empty()) {
        return EnvFilter::new(directives);
    }
    let level = match level.map(str::to_ascii_lowercase).as_deref() {
        Some("trace") => "trace",
        Some("debug") => "debug",
        Some("warn") => "warn",
        Some("error") | Some("fatal") => "error",
        _ => "info",
    };
    EnvFilter::new(format!("warn,kafka_lag_scaler={level}"))
}

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    let var = |name| std::env::var(name).ok();
    let filter = filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.without_time().init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_levels_map_onto_this_crate_only() {
        let cases = [
            (None, "kafka_lag_scaler=info,warn"),
            (Some("DEBUG"), "kafka_lag_scaler=debug,warn"),
            (Some("FATAL"), "kafka_lag_scaler=error,warn"),
            (Some("nonsense"), "kafka_lag_scaler=info,warn"),
        ];
        for (level, expected) in cases {
            assert_eq!(filter(level, None).to_string(), expected, "{level:?}");
        }
    }

    #[test]
    fn rust_log_wins_when_set() {
        assert_eq!(filter(Some("INFO"), Some("trace")).to_string(), "trace");
        assert_eq!(
            filter(Some("INFO"), Some(" ")).to_string(),
            "kafka_lag_scaler=info,warn"
        );
    }
}
