//! The validated `policies.compress`: which codings weir offers, in what order, at what
//! level, and which responses qualify.

/// A content coding weir compresses responses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Encoding {
    /// Zstandard (`zstd`).
    Zstd,
    /// Brotli (`br`).
    Brotli,
    /// gzip (`gzip`).
    Gzip,
}

impl Encoding {
    /// Every coding, by the name `Accept-Encoding`, `Content-Encoding` and the file use.
    pub(crate) const ALL: [(&'static str, Self); 3] = [
        ("zstd", Self::Zstd),
        ("br", Self::Brotli),
        ("gzip", Self::Gzip),
    ];

    /// Its name in headers and in the file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }

    /// The levels it takes: zlib's 1 to 9; brotli's 1 to 11 (0 would turn the encoder
    /// off); zstd's 1 to 19 (20 to 22 need windows of 32 MiB and more per response).
    pub(crate) fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Self::Zstd => 1..=19,
            Self::Brotli => 1..=11,
            Self::Gzip => 1..=9,
        }
    }

    /// The level used when `level` is not set.
    pub(crate) fn default_level(self) -> u32 {
        match self {
            Self::Zstd => super::DEFAULT_ZSTD_LEVEL,
            Self::Brotli => super::DEFAULT_BROTLI_LEVEL,
            Self::Gzip => super::DEFAULT_GZIP_LEVEL,
        }
    }
}

/// A media type pattern of `types`, lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MediaRange {
    /// `type/subtype`.
    Exact(String),
    /// `type/*`: the type alone.
    Type(String),
}

impl MediaRange {
    /// Whether the media type `essence` (`type/subtype`, parameters removed) matches, in
    /// any case.
    pub(crate) fn matches(&self, essence: &str) -> bool {
        match self {
            Self::Exact(t) => t.eq_ignore_ascii_case(essence),
            Self::Type(t) => essence
                .split_once('/')
                .is_some_and(|(ty, _)| t.eq_ignore_ascii_case(ty)),
        }
    }
}

/// `policies.compress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compress {
    /// Codings offered, weir's preference first; never empty.
    pub algorithms: Vec<Encoding>,
    /// Responses declaring a smaller `Content-Length` are not compressed.
    pub min_size: u64,
    /// Media types compressed.
    pub types: Vec<MediaRange>,
    /// One level for every coding; each coding's default when `None`.
    pub level: Option<u32>,
}
