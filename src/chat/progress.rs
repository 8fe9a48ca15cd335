//! Progress of a streamed reply, paced for the caller: nothing for calls that end within a
//! second, then at most four updates a second, each with the tokens so far and the last
//! words. Updates are awaited as they are made, so none can follow the result.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::vultr::stream::StreamAssembler;

/// One progress update: how many tokens came so far, and a line saying so with the
/// reply's last words.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    /// Chunks with output so far (about one token each).
    pub tokens: u64,
    /// `N tokens so far: …last words`.
    pub message: String,
}

/// Where progress updates go: the transport's notification to the caller who asked for
/// them. Cloned for each update, so it should be cheap to clone.
pub trait ProgressSink: Clone + Send + Sync + 'static {
    /// Sends one update; a failure to send is the sink's to log, never the call's.
    fn send(self, update: ProgressUpdate) -> impl Future<Output = ()> + Send;
}

/// Paces the updates of one call to its sink; without a sink (the caller asked for no
/// progress) it does nothing.
pub struct Progress<S> {
    sink: Option<S>,
    started: Instant,
    last_sent: Option<Instant>,
}

impl<S: ProgressSink> Progress<S> {
    /// Quiet for calls that end within this.
    const GRACE: Duration = Duration::from_secs(1);
    /// Least time between two updates.
    const INTERVAL: Duration = Duration::from_millis(250);

    /// Pacing for a call starting now, reporting to `sink` when there is one.
    pub fn new(sink: Option<S>) -> Self {
        Self {
            sink,
            started: Instant::now(),
            last_sent: None,
        }
    }

    /// The update due after this chunk, if any, as a future that sends it.
    pub fn on_chunk(&mut self, so_far: &StreamAssembler) -> impl Future<Output = ()> + use<S> {
        let now = Instant::now();
        let due = now.duration_since(self.started) >= Self::GRACE
            && self
                .last_sent
                .is_none_or(|last| now.duration_since(last) >= Self::INTERVAL);
        let update = match &self.sink {
            Some(sink) if due => {
                self.last_sent = Some(now);
                let tokens = so_far.deltas();
                let message = format!(
                    "{tokens} tokens so far: …{}",
                    last_words(so_far.content(), 60)
                );
                Some((sink.clone(), ProgressUpdate { tokens, message }))
            }
            _ => None,
        };
        async move {
            if let Some((sink, update)) = update {
                sink.send(update).await;
            }
        }
    }
}

/// The last `max` characters of `text` on one line.
fn last_words(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let count = flat.chars().count();
    flat.chars().skip(count.saturating_sub(max)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;

    /// A sink that keeps what it was sent, with when.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<(Duration, ProgressUpdate)>>>, Option<Instant>);

    impl Recorded {
        fn starting_now() -> Self {
            Self(Arc::default(), Some(Instant::now()))
        }

        fn sent(&self) -> Vec<(Duration, ProgressUpdate)> {
            self.0.lock().unwrap().clone()
        }
    }

    impl ProgressSink for Recorded {
        async fn send(self, update: ProgressUpdate) {
            let at = self.1.unwrap().elapsed();
            self.0.lock().unwrap().push((at, update));
        }
    }

    /// Feeds `Progress` one word every `every`, `words` times, awaiting each update.
    async fn stream_words(progress: &mut Progress<Recorded>, words: usize, every: Duration) {
        let mut so_far = StreamAssembler::default();
        for _ in 0..words {
            tokio::time::sleep(every).await;
            so_far.push(&json!({"choices": [{"delta": {"content": "word "}}]}));
            progress.on_chunk(&so_far).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_ends_within_a_second_reports_nothing() {
        let sink = Recorded::starting_now();
        let mut progress = Progress::new(Some(sink.clone()));
        stream_words(&mut progress, 9, Duration::from_millis(100)).await;
        assert_eq!(sink.sent(), []);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_first_second_updates_come_at_most_four_a_second() {
        let sink = Recorded::starting_now();
        let mut progress = Progress::new(Some(sink.clone()));
        stream_words(&mut progress, 40, Duration::from_millis(50)).await;
        let at: Vec<u128> = sink.sent().iter().map(|(at, _)| at.as_millis()).collect();
        assert_eq!(at, [1000, 1250, 1500, 1750, 2000]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_update_counts_the_tokens_and_quotes_the_last_words() {
        let sink = Recorded::starting_now();
        let mut progress = Progress::new(Some(sink.clone()));
        stream_words(&mut progress, 20, Duration::from_millis(60)).await;
        let (_, first) = &sink.sent()[0];
        assert_eq!(first.tokens, 17);
        let words = "word ".repeat(17);
        let expected = format!("17 tokens so far: …{}", last_words(&words, 60));
        assert_eq!(first.message, expected);
        assert_eq!(last_words(&words, 60).chars().count(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_sink_nothing_is_made() {
        let mut progress = Progress::<Recorded>::new(None);
        stream_words(&mut progress, 30, Duration::from_millis(100)).await;
        assert_eq!(progress.last_sent, None);
    }

    #[test]
    fn last_words_keep_the_end_on_one_line() {
        assert_eq!(last_words("one\ntwo  three", 9), "two three");
        assert_eq!(last_words("short", 60), "short");
    }
}
