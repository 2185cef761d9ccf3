//! Metric names, as dashboards and alerts query them: one place, so that a rename is one
//! edit and the docs' list can be checked against it.

/// Requests answered, by route, upstream, instance, status class and consumer (empty when
/// none was identified).
pub(crate) const REQUESTS: &str = "weir_requests_total";
/// Time from request to the end of the response, by route and upstream.
pub(crate) const REQUEST_DURATION: &str = "weir_request_duration_seconds";
/// Time an instance took, from the request sent to the end of its response.
pub(crate) const UPSTREAM_DURATION: &str = "weir_upstream_duration_seconds";
/// Requests being served by an instance now.
pub(crate) const IN_FLIGHT: &str = "weir_in_flight_requests";
/// 1 when an instance may take requests, 0 when it is down or ejected.
pub(crate) const HEALTH: &str = "weir_upstream_health";
/// Passive ejections of an instance.
pub(crate) const EJECTIONS: &str = "weir_upstream_ejections_total";
/// Attempts after the first, by route and upstream.
pub(crate) const RETRIES: &str = "weir_retries_total";
/// Downstream connections open now, by listener.
pub(crate) const DOWNSTREAM_CONNECTIONS: &str = "weir_downstream_connections";
/// TLS handshakes completed, by listener and protocol version.
pub(crate) const TLS_HANDSHAKES: &str = "weir_tls_handshakes_total";
/// Connections to an instance that failed or timed out.
pub(crate) const CONNECT_FAILURES: &str = "weir_upstream_connect_failures_total";
/// TCP connections forwarded, by listener, upstream and instance.
pub(crate) const TCP_CONNECTIONS: &str = "weir_tcp_connections_total";
/// TCP connections open now, by listener, upstream and instance.
pub(crate) const TCP_ACTIVE: &str = "weir_tcp_active_connections";
/// Bytes forwarded by TCP listeners, by listener and direction (`in` from clients, `out`
/// to them).
pub(crate) const TCP_BYTES: &str = "weir_tcp_bytes_total";
/// TCP connections closed without being forwarded, by listener and reason.
pub(crate) const TCP_REFUSED: &str = "weir_tcp_refused_total";
/// Configuration reloads, by result.
pub(crate) const RELOADS: &str = "weir_config_reloads_total";
/// Access log lines dropped because the writer was `access_log.queue` lines behind.
pub(crate) const ACCESS_LOG_DROPPED: &str = "weir_access_log_dropped_total";
/// Requests refused by a policy, by route (empty before one matched) and reason.
pub(crate) const AUTH_FAILURES: &str = "weir_auth_failures_total";
/// Requests refused by a rate limit (429), by route (empty before one matched) and the
/// rule's `by` (consumer, ip, route, header).
pub(crate) const RATELIMITED: &str = "weir_ratelimited_total";
/// Rate-limit decisions Redis failed to make (an error or no answer within the timeout).
pub(crate) const RATELIMIT_STORE_ERRORS: &str = "weir_ratelimit_store_errors_total";
/// Requests refused before routing (a head over a limit, a bad Host, a head too slow to
/// arrive), by listener and reason.
pub(crate) const REJECTED: &str = "weir_rejected_requests_total";
/// Always 1, labelled with the version.
pub(crate) const BUILD_INFO: &str = "weir_build_info";
