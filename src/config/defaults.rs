//! Defaults of every setting that has one, named, so that the docs, `conf/weir.yaml` and
//! the code say the same.

use std::time::Duration;

/// Highest accepted target weight; keeps the smooth round-robin schedule small.
pub(crate) const MAX_WEIGHT: u32 = 1000;
/// Weight of a target that does not give one.
pub(crate) const DEFAULT_WEIGHT: u32 = 1;
/// Upstream TCP connect timeout when `timeouts.connect` is not set.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upstream read timeout when `timeouts.read` is not set (nginx's `proxy_read_timeout`).
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Upstream write timeout when `timeouts.write` is not set.
pub(crate) const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an idle pooled upstream connection is kept when `timeouts.idle` is not set.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long in-flight requests may finish on shutdown when not configured.
pub(crate) const DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts on other instances after a connect failure or early reset, when not configured.
pub(crate) const DEFAULT_RETRIES: u32 = 2;
/// Time between active checks of one instance when `health_check.interval` is not set.
pub(crate) const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// Time one active check may take when `health_check.timeout` is not set.
pub(crate) const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Passing checks that bring an unhealthy instance back, when not configured.
pub(crate) const DEFAULT_HEALTHY_SUCCESSES: u32 = 2;
/// Failing checks that take a healthy instance out, when not configured.
pub(crate) const DEFAULT_UNHEALTHY_FAILURES: u32 = 3;
/// Consecutive failed requests that eject an instance (nginx's `max_fails` default).
pub(crate) const DEFAULT_MAX_FAILS: u32 = 1;
/// Window for counting failures and first ejection time (nginx's `fail_timeout` default).
pub(crate) const DEFAULT_FAIL_TIMEOUT: Duration = Duration::from_secs(10);
/// Cap of the doubling ejection time when `passive.max_ejection_time` is not set.
pub(crate) const DEFAULT_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);
/// Share of a pool that passive checks may eject at once, when not configured.
pub(crate) const DEFAULT_MAX_EJECTION_PERCENT: u8 = 50;
/// Time between DNS resolutions of a discovered upstream when `resolve_every` is not set.
pub(crate) const DEFAULT_RESOLVE_EVERY: Duration = Duration::from_secs(10);
/// HSTS `max-age` when `hsts.max_age` is not set: one year.
pub(crate) const DEFAULT_HSTS_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long a TCP connection may carry no traffic either way (nginx's `proxy_timeout`).
pub(crate) const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a connection queued by `on_limit: queue` waits for a free slot.
pub(crate) const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines the access log holds for its writer when `access_log.queue` is not set: about
/// 5 MiB of JSON lines, a second of a busy instance's traffic.
pub(crate) const DEFAULT_ACCESS_LOG_QUEUE: usize = 16 * 1024;
/// Port of the HTTPS URL `redirect_https` sends to when no `https` listener is configured.
pub(crate) const DEFAULT_HTTPS_PORT: u16 = 443;
/// Port of the admin listener when `admin.address` is not set (on 127.0.0.1).
pub(crate) const DEFAULT_ADMIN_PORT: u16 = 9901;
/// Pid file when `server.pid_file` is not set.
pub(crate) const DEFAULT_PID_FILE: &str = "/tmp/weir.pid";
/// Socket the listeners are handed over on in a binary upgrade, when `server.upgrade_sock` is
/// not set.
pub(crate) const DEFAULT_UPGRADE_SOCK: &str = "/tmp/weir-upgrade.sock";
/// Request id header name when `headers.request_id` is not set.
pub(crate) const DEFAULT_REQUEST_ID_HEADER: &str = "x-request-id";
/// Serving-instance response header name when `headers.instance_header` is not set.
pub(crate) const DEFAULT_INSTANCE_HEADER: &str = "x-upstream-instance";
/// How often a JWKS URL is fetched again.
pub(crate) const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);
/// Shortest time between JWKS fetches caused by a token with an unknown `kid`.
pub(crate) const DEFAULT_JWKS_REFRESH_ON_MISS: Duration = Duration::from_secs(10);
/// Clock skew tolerated on a token's `exp`, `nbf` and `iat`.
pub(crate) const DEFAULT_JWT_LEEWAY: Duration = Duration::from_secs(30);
/// The claim naming a token's consumer.
pub(crate) const DEFAULT_CONSUMER_CLAIM: &str = "sub";
/// Where API keys are looked for: Kong's default.
pub(crate) const DEFAULT_KEY_NAME: &str = "apikey";
/// The consumer of requests an `anonymous: true` policy lets through without credentials.
pub(crate) const ANONYMOUS_CONSUMER: &str = "anonymous";
/// Methods a CORS preflight may ask for when `cors.methods` is not set (OPTIONS is implied).
pub(crate) const DEFAULT_CORS_METHODS: [http::Method; 6] = [
    http::Method::GET,
    http::Method::HEAD,
    http::Method::POST,
    http::Method::PUT,
    http::Method::PATCH,
    http::Method::DELETE,
];
/// Codings offered when `compress.algorithms` is not set, weir's preference first.
pub(crate) const DEFAULT_COMPRESS_ALGORITHMS: [&str; 3] = ["zstd", "br", "gzip"];
/// Smallest `Content-Length` compressed when `compress.min_size` is not set: a smaller body
/// fits one packet either way, and the coding's framing eats much of the gain.
pub(crate) const DEFAULT_COMPRESS_MIN_SIZE: u64 = 1024;
/// Media types compressed when `compress.types` is not set: text and the text formats of
/// APIs and pages. Images, video, archives and fonts in woff2 are compressed already.
pub(crate) const DEFAULT_COMPRESS_TYPES: [&str; 5] = [
    "text/*",
    "application/json",
    "application/javascript",
    "application/xml",
    "image/svg+xml",
];
/// gzip level when `compress.level` is not set: zlib's own default.
pub(crate) const DEFAULT_GZIP_LEVEL: u32 = 6;
/// Brotli level when `compress.level` is not set. Brotli's own default (11) is for files
/// compressed once ahead of time; 4 is about as fast as gzip 6 and smaller.
pub(crate) const DEFAULT_BROTLI_LEVEL: u32 = 4;
/// Zstandard level when `compress.level` is not set: zstd's own default.
pub(crate) const DEFAULT_ZSTD_LEVEL: u32 = 3;
/// Keys the local rate-limit store holds when `rate_limits.local.max_keys` is not set.
pub(crate) const DEFAULT_RATE_LIMIT_MAX_KEYS: usize = 100_000;
/// The longest one Redis rate-limit decision may take when `rate_limits.redis.timeout` is
/// not set.
pub(crate) const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// Multiplexed Redis connections when `rate_limits.redis.pool_size` is not set.
pub(crate) const DEFAULT_REDIS_POOL_SIZE: usize = 4;
/// `limits.max_header_size` when not set: nginx's four 8 KiB header buffers.
pub(crate) const DEFAULT_MAX_HEADER_SIZE: usize = 32 * 1024;
/// The largest `limits.max_header_size`: Pingora's parser refuses a longer head itself.
pub(crate) const MAX_HEADER_SIZE: usize = 1024 * 1024 - 1;
/// `limits.max_header_line` when not set: one of nginx's 8 KiB header buffers.
pub(crate) const DEFAULT_MAX_HEADER_LINE: usize = 8 * 1024;
/// `limits.max_headers` when not set: HAProxy's `tune.http.maxhdr` (101), rounded.
pub(crate) const DEFAULT_MAX_HEADERS: usize = 100;
/// The largest `limits.max_headers`: Pingora's parser refuses a request with more.
pub(crate) const MAX_HEADERS: usize = 256;
/// `limits.max_uri_length` when not set: nginx's request line buffer.
pub(crate) const DEFAULT_MAX_URI_LENGTH: usize = 8 * 1024;
/// `limits.header_timeout` when not set: nginx's `client_header_timeout`.
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// `limits.keepalive_timeout` when not set: nginx's `keepalive_timeout`.
pub(crate) const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// `limits.max_requests_per_connection` when not set: nginx's `keepalive_requests`.
pub(crate) const DEFAULT_MAX_REQUESTS_PER_CONNECTION: u32 = 1000;
