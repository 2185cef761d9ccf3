//! The session module that compresses response bodies: Pingora's compression engine
//! (`ResponseCompressionCtx`, which pingora-core's `ResponseCompression` module wraps),
//! off until [`super::compress`] starts it for one response, in a wrapper of weir's that
//! ends brotli streams. Pingora 0.9's brotli encoder ends a response with a flush
//! (`BROTLI_OPERATION_FLUSH`), never a finish, so its streams lack their last meta-block and
//! decoders (curl, browsers, the brotli crate) refuse them or stop short. A flush leaves
//! the stream at a byte boundary, where one byte, `0x03` (ISLAST and ISLASTEMPTY: an empty
//! last meta-block), ends it; the wrapper appends it to the last output.

use crate::config::Encoding;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::ACCEPT_ENCODING;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module, ModuleBuilder};
use pingora::protocols::http::compression::ResponseCompressionCtx;
use std::any::Any;
use std::sync::LazyLock;

/// An empty last meta-block: the end of a brotli stream after a flush.
const BROTLI_END: u8 = 0x03;

/// What the engine is told a request accepts once weir has chosen: that one coding alone,
/// so that the engine picks it.
static OFFERS: LazyLock<[RequestHeader; 3]> = LazyLock::new(|| {
    [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip].map(|e| {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static(e.name()));
        RequestHeader::from(parts)
    })
});

/// Response compression of one session.
pub(crate) struct Compression {
    engine: ResponseCompressionCtx,
    /// Started with brotli, and its stream not ended yet.
    brotli_open: bool,
    /// The body has ended: nothing is left to flush.
    ended: bool,
}

impl Compression {
    /// What `init_downstream_modules` installs. Pingora's own compression module is not
    /// installed beside it.
    pub(crate) fn builder() -> ModuleBuilder {
        Box::new(Builder)
    }

    /// Compresses the response about to go through [`HttpModule::response_header_filter`]
    /// with `encoding` at `level`. Nothing once a response header went through.
    pub(super) fn start(&mut self, encoding: Encoding, level: u32) {
        if !self.engine.is_header_phase() {
            return;
        }
        self.engine = ResponseCompressionCtx::new(level, false, false);
        // The engine compresses with the first coding the request accepts: told this one.
        self.engine.request_filter(&OFFERS[super::index(encoding)]);
        self.brotli_open = encoding == Encoding::Brotli;
    }

    /// `out` with the end of the brotli stream appended, once.
    fn end_brotli(&mut self, out: Option<Bytes>) -> Option<Bytes> {
        if !self.brotli_open {
            return out;
        }
        self.brotli_open = false;
        let mut last = BytesMut::from(out.unwrap_or_default());
        last.extend_from_slice(&[BROTLI_END]);
        Some(last.freeze())
    }
}

#[async_trait]
impl HttpModule for Compression {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    async fn response_header_filter(
        &mut self,
        resp: &mut ResponseHeader,
        end_of_stream: bool,
    ) -> pingora::Result<()> {
        // Sets Content-Encoding, drops Content-Length and Accept-Ranges, weakens the ETag
        // when started; does nothing otherwise.
        self.engine.response_header_filter(resp, end_of_stream);
        Ok(())
    }

    fn response_body_filter(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
    ) -> pingora::Result<()> {
        if !self.engine.is_enabled() || self.ended {
            return Ok(());
        }
        let out = self
            .engine
            .response_body_filter(body.as_ref(), end_of_stream);
        if end_of_stream {
            self.ended = true;
            *body = self.end_brotli(out);
        } else if out.is_some() {
            *body = out;
        }
        Ok(())
    }

    fn response_done_filter(&mut self) -> pingora::Result<Option<Bytes>> {
        if !self.engine.is_enabled() || self.ended {
            return Ok(None);
        }
        self.ended = true;
        let out = self.engine.response_body_filter(None, true);
        Ok(self.end_brotli(out))
    }
}

struct Builder;

impl HttpModuleBuilder for Builder {
    fn init(&self) -> Module {
        Box::new(Compression {
            engine: ResponseCompressionCtx::new(0, false, false),
            brotli_open: false,
            ended: false,
        })
    }

    fn order(&self) -> i16 {
        // As Pingora's module: after most other filters.
        i16::MIN / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// What a session sends for `chunks`, the last one ending the body when `end_in_body`,
    /// else with the `Done` task after them.
    async fn sent(encoding: Encoding, chunks: &[&[u8]], end_in_body: bool) -> Vec<u8> {
        let mut module = Compression::builder().init();
        let compression = module.as_any_mut().downcast_mut::<Compression>().unwrap();
        compression.start(encoding, encoding.default_level());
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("content-type", "text/plain").unwrap();
        module
            .response_header_filter(&mut resp, false)
            .await
            .unwrap();
        assert_eq!(
            resp.headers.get("content-encoding").unwrap(),
            encoding.name()
        );
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut body = Some(Bytes::copy_from_slice(chunk));
            let end = end_in_body && i + 1 == chunks.len();
            module.response_body_filter(&mut body, end).unwrap();
            out.extend_from_slice(&body.unwrap_or_default());
        }
        let done = module.response_done_filter().unwrap();
        assert!(
            !end_in_body || done.is_none(),
            "nothing is left after the end"
        );
        out.extend_from_slice(&done.unwrap_or_default());
        out
    }

    #[tokio::test]
    async fn brotli_streams_end_whether_the_body_or_done_ends_them() {
        let text = b"weir compresses this line, and this line, and this line again.\n".repeat(500);
        let chunks: Vec<&[u8]> = text.chunks(7000).collect();
        for end_in_body in [true, false] {
            let br = sent(Encoding::Brotli, &chunks, end_in_body).await;
            let mut decoded = Vec::new();
            brotli::Decompressor::new(&br[..], 4096)
                .read_to_end(&mut decoded)
                .unwrap();
            assert!(decoded == text, "end in body: {end_in_body}");
            let mut gzip = Vec::new();
            flate2::read::GzDecoder::new(&sent(Encoding::Gzip, &chunks, end_in_body).await[..])
                .read_to_end(&mut gzip)
                .unwrap();
            assert!(gzip == text, "gzip, end in body: {end_in_body}");
        }
    }
}
