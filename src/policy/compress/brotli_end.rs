//! The end of a brotli stream, which Pingora 0.9's encoder never writes: it ends a response
//! with a flush (`BROTLI_OPERATION_FLUSH`), not a finish, so the stream lacks its last
//! meta-block and decoders (curl, browsers, the brotli crate) refuse it or stop short.
//! A flush leaves the stream at a byte boundary, where one byte, `0x03` (ISLAST and
//! ISLASTEMPTY set: an empty last meta-block), ends it. [`BrotliEnd`] runs after Pingora's
//! module and appends that byte to the last body chunk of a response weir had brotli
//! compress.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module, ModuleBuilder};
use std::any::Any;

/// An empty last meta-block.
const LAST_EMPTY_META_BLOCK: u8 = 0x03;

/// Per response: whether the stream is brotli from Pingora's encoder and still open.
#[derive(Default)]
pub(crate) struct BrotliEnd {
    open: bool,
}

impl BrotliEnd {
    /// Called when weir has Pingora's module brotli-compress this response.
    pub(super) fn arm(&mut self) {
        self.open = true;
    }

    /// A builder for the module list, ordered after Pingora's compression module.
    pub(crate) fn builder() -> ModuleBuilder {
        Box::new(Builder)
    }
}

#[async_trait]
impl HttpModule for BrotliEnd {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn response_body_filter(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
    ) -> pingora::Result<()> {
        if self.open && end_of_stream {
            self.open = false;
            let mut last = BytesMut::from(body.take().unwrap_or_default());
            last.extend_from_slice(&[LAST_EMPTY_META_BLOCK]);
            *body = Some(last.freeze());
        }
        Ok(())
    }
}

struct Builder;

impl HttpModuleBuilder for Builder {
    fn init(&self) -> Module {
        Box::new(BrotliEnd::default())
    }

    fn order(&self) -> i16 {
        // Pingora's compression module runs at i16::MIN / 2; lower runs later.
        i16::MIN / 2 - 1
    }
}
