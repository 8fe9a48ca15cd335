//! Reading stdin one line at a time without ever holding more than the line size cap.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line of input, or what stood in its place.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, without its newline (the last line of the input may have none).
    Complete(Vec<u8>),
    /// A line longer than the cap: it was skipped up to and including its newline.
    TooLong,
}

/// Reads newline-delimited lines of at most `max_bytes` bytes each.
pub struct LineReader<R> {
    input: R,
    max_bytes: usize,
    line: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// A reader of `input` that refuses lines longer than `max_bytes`.
    pub fn new(input: R, max_bytes: usize) -> Self {
        Self {
            input,
            max_bytes,
            line: Vec::new(),
        }
    }

    /// The next line; `None` at end of input. An over-long line is skipped to its newline
    /// (never buffered whole) and reported as [`Line::TooLong`].
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut skipping = false;
        loop {
            let available = self.input.fill_buf().await?;
            if available.is_empty() {
                if skipping {
                    return Ok(Some(Line::TooLong));
                }
                if self.line.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(Line::Complete(std::mem::take(&mut self.line))));
            }
            let newline = available.iter().position(|&byte| byte == b'\n');
            let content = &available[..newline.unwrap_or(available.len())];
            if !skipping && self.line.len() + content.len() > self.max_bytes {
                skipping = true;
                self.line = Vec::new();
            }
            if !skipping {
                self.line.extend_from_slice(content);
            }
            let used = newline.map_or(available.len(), |at| at + 1);
            self.input.consume(used);
            if newline.is_some() {
                if skipping {
                    return Ok(Some(Line::TooLong));
                }
                return Ok(Some(Line::Complete(std::mem::take(&mut self.line))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all_lines(input: &[u8], max_bytes: usize, buffer: usize) -> Vec<Line> {
        let input = tokio::io::BufReader::with_capacity(buffer, input);
        let mut reader = LineReader::new(input, max_bytes);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            lines.push(line);
        }
        lines
    }

    fn complete(text: &str) -> Line {
        Line::Complete(text.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn lines_come_out_without_their_newlines_and_the_last_one_may_lack_one() {
        let lines = all_lines(b"one\ntwo\n\nthree", 10, 2).await;
        assert_eq!(
            lines,
            [
                complete("one"),
                complete("two"),
                complete(""),
                complete("three")
            ]
        );
    }

    #[tokio::test]
    async fn a_line_over_the_cap_is_skipped_to_its_newline_and_the_next_line_is_read() {
        let lines = all_lines(b"12345\n123456789012\nafter\n", 5, 3).await;
        assert_eq!(lines, [complete("12345"), Line::TooLong, complete("after")]);
    }

    #[tokio::test]
    async fn an_over_long_last_line_without_newline_is_reported_too() {
        let lines = all_lines(b"ok\n0123456789", 5, 4).await;
        assert_eq!(lines, [complete("ok"), Line::TooLong]);
    }

    #[tokio::test]
    async fn skipping_a_line_never_holds_more_than_the_cap() {
        let huge = vec![b'x'; 1 << 20];
        let input = tokio::io::BufReader::with_capacity(1024, &huge[..]);
        let mut reader = LineReader::new(input, 100);
        assert_eq!(reader.next_line().await.unwrap(), Some(Line::TooLong));
        assert!(reader.line.capacity() <= 100 + 1024);
    }
}
