//! Noticing that the client has gone: end of stdin cancels the calls still running, so
//! their upstream requests are closed at once instead of running on unobserved.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::CancellationToken;

/// Wraps a reader and cancels `token` when it reaches end of input.
pub struct CancelOnEof<R> {
    inner: R,
    token: CancellationToken,
}

impl<R> CancelOnEof<R> {
    /// A reader that cancels `token` at end of input.
    pub fn new(inner: R, token: CancellationToken) -> Self {
        Self { inner, token }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for CancelOnEof<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            self.token.cancel();
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn end_of_input_cancels_the_token_and_data_does_not() {
        let token = CancellationToken::new();
        let mut reader = CancelOnEof::new(&b"line\n"[..], token.clone());
        let mut first = [0u8; 5];
        reader.read_exact(&mut first).await.unwrap();
        assert!(!token.is_cancelled());
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert!(token.is_cancelled());
    }
}
